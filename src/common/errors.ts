// One error hierarchy for every service. Each front door maps a class to a status in one table
// (src/api/native/errors.ts); the CLI maps the status back to an exit code.

export type ErrorClass =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'Conflict'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'ResourceExhausted'
  | 'Internal';

export class SiloError extends Error {
  readonly class: ErrorClass;
  readonly code: string;
  readonly op?: string;

  constructor(cls: ErrorClass, code: string, message: string, opts: { cause?: unknown; op?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.class = cls;
    this.code = code;
    this.op = opts.op;
    this.name = 'SiloError';
  }
}

export const notFound = (what: string, ref: string) =>
  new SiloError('NotFound', 'SILO_NOT_FOUND', `no such ${what}: ${ref}`);
export const alreadyExists = (message: string) => new SiloError('AlreadyExists', 'SILO_ALREADY_EXISTS', message);
export const invalid = (message: string) => new SiloError('InvalidArgument', 'SILO_INVALID_ARGUMENT', message);
export const conflict = (message: string) => new SiloError('Conflict', 'SILO_CONFLICT', message);
export const badState = (message: string) => new SiloError('FailedPrecondition', 'SILO_INVALID_STATE', message);
export const exhausted = (message: string) => new SiloError('ResourceExhausted', 'SILO_RESOURCE_EXHAUSTED', message);
export const internal = (message: string, cause?: unknown) =>
  new SiloError('Internal', 'SILO_INTERNAL', message, { cause });

export function isSiloError(e: unknown): e is SiloError {
  return e instanceof SiloError;
}

/** Message of any thrown value, on one line. */
export function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, '; ').trim();
}
