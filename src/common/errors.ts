// One error type for every service and front door. A SiloError carries a class (what kind of failure, the key of the
// one status table below), a code (a stable name clients may key on, `SILO_…`) and structured fields (the object kind
// and reference, an exit code…) so front doors word it in their own dialect without parsing the message.

export type ErrorClass =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'Conflict'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'Unauthenticated'
  | 'ResourceExhausted'
  | 'NoCapacity'
  | 'DiskFull'
  | 'Unimplemented'
  | 'Internal';

export type ErrorFields = Readonly<Record<string, string | number | boolean>>;

export class SiloError extends Error {
  readonly class: ErrorClass;
  readonly code: string;
  readonly fields: ErrorFields;
  readonly op?: string;

  constructor(cls: ErrorClass, code: string, message: string, opts: { cause?: unknown; op?: string; fields?: ErrorFields } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.class = cls;
    this.code = code;
    this.fields = opts.fields ?? {};
    this.op = opts.op;
    this.name = 'SiloError';
  }
}

/** gRPC's canonical status codes (grpc/doc/statuscodes.md), for the CRI door. */
export const Grpc = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The one table from error class to wire status, for both HTTP doors and the CRI. HTTP statuses are dockerd's for
 * the same failure (moby's errdefs): a full disk is a plain system error there (500), and a pool with no free address
 * is "unavailable" (503); the native API tells a full disk apart by its code, SILO_DISK_FULL.
 */
export const STATUS: Readonly<Record<ErrorClass, { http: number; grpc: number }>> = {
  InvalidArgument: { http: 400, grpc: Grpc.INVALID_ARGUMENT },
  NotFound: { http: 404, grpc: Grpc.NOT_FOUND },
  AlreadyExists: { http: 409, grpc: Grpc.ALREADY_EXISTS },
  Conflict: { http: 409, grpc: Grpc.ABORTED },
  FailedPrecondition: { http: 409, grpc: Grpc.FAILED_PRECONDITION },
  // A request past one of Silo's caps (layer size, entry count, archive size): the client asked for too much.
  ResourceExhausted: { http: 413, grpc: Grpc.RESOURCE_EXHAUSTED },
  // The host ran out of something a request needs (addresses, subnets).
  NoCapacity: { http: 503, grpc: Grpc.RESOURCE_EXHAUSTED },
  DiskFull: { http: 500, grpc: Grpc.RESOURCE_EXHAUSTED },
  Unimplemented: { http: 501, grpc: Grpc.UNIMPLEMENTED },
  Unavailable: { http: 503, grpc: Grpc.UNAVAILABLE },
  // A registry refused the credentials (or wants some): dockerd's errdefs.Unauthorized.
  Unauthenticated: { http: 401, grpc: Grpc.UNAUTHENTICATED },
  Internal: { http: 500, grpc: Grpc.INTERNAL },
};

export const notFound = (what: string, ref: string) =>
  new SiloError('NotFound', 'SILO_NOT_FOUND', `no such ${what}: ${ref}`, { fields: { kind: what, ref } });
export const alreadyExists = (message: string) => new SiloError('AlreadyExists', 'SILO_ALREADY_EXISTS', message);
export const invalid = (message: string) => new SiloError('InvalidArgument', 'SILO_INVALID_ARGUMENT', message);
export const conflict = (message: string) => new SiloError('Conflict', 'SILO_CONFLICT', message);
export const badState = (message: string) => new SiloError('FailedPrecondition', 'SILO_INVALID_STATE', message);
export const exhausted = (message: string) => new SiloError('ResourceExhausted', 'SILO_RESOURCE_EXHAUSTED', message);
export const noCapacity = (message: string) => new SiloError('NoCapacity', 'SILO_NO_CAPACITY', message);
export const diskFull = (message: string, cause?: unknown) => new SiloError('DiskFull', 'SILO_DISK_FULL', message, { cause });
export const unauthenticated = (message: string) => new SiloError('Unauthenticated', 'SILO_UNAUTHENTICATED', message);
export const unavailable = (message: string) => new SiloError('Unavailable', 'SILO_UNAVAILABLE', message);
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

// Host paths a message must never show a client (the state and run directories, cgroups): the daemon registers them.
const hostRoots = new Set<string>(['/sys/fs/cgroup']);

export function hideHostPaths(...roots: string[]): void {
  for (const r of roots) if (r && r !== '/') hostRoots.add(r.replace(/\/+$/, ''));
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A message with every host path under a registered root removed (with its quotes and a leading space). */
export function scrubHostPaths(m: string): string {
  let out = m;
  for (const root of hostRoots) {
    // A path ends at a blank, a quote, a comma, a semicolon, a parenthesis or a colon that ends a word.
    out = out.replace(new RegExp(`\\s?(['"]?)${escapeRe(root)}(?=[/'"\\s,:;)]|$)(?:[^\\s'",;):]|:(?=\\S))*\\1`, 'g'), '');
  }
  return out;
}

const errnoOf = (e: unknown): NodeJS.ErrnoException | undefined => {
  const x = e as NodeJS.ErrnoException | null;
  return x && typeof x === 'object' && typeof x.code === 'string' && typeof x.syscall === 'string' ? x : undefined;
};

/**
 * Any thrown value as a SiloError. A system call's error never shows its path (Node puts the host path in the
 * message); a full disk is DiskFull; a name too long can only come from a name a client gave (a layer entry, a path).
 */
export function toSiloError(e: unknown): SiloError {
  if (isSiloError(e)) {
    // A service that wrapped a full disk as its own internal failure still reports a full disk.
    const c = errnoOf(e.cause)?.code;
    if (e.class === 'Internal' && (c === 'ENOSPC' || c === 'EDQUOT')) return new SiloError('DiskFull', 'SILO_DISK_FULL', e.message, { cause: e, fields: e.fields });
    return e;
  }
  const errno = errnoOf(e);
  if (errno) {
    const what = `${errno.syscall}: ${errno.code}`;
    if (errno.code === 'ENOSPC' || errno.code === 'EDQUOT') return diskFull(`no space left on the state filesystem (${what})`, e);
    if (errno.code === 'ENAMETOOLONG') return new SiloError('InvalidArgument', 'SILO_NAME_TOO_LONG', `a path is too long (${what})`, { cause: e });
    return internal(what, e);
  }
  return internal(oneLine(e), e);
}

/** What goes on the wire for an error: status by the one table, the code, and a one-line message without host paths. */
export interface WireError {
  http: number;
  grpc: number;
  code: string;
  message: string;
  error: SiloError;
}

export function toWire(e: unknown): WireError {
  const err = toSiloError(e);
  const { http, grpc } = STATUS[err.class];
  return { http, grpc, code: err.code, message: scrubHostPaths(oneLine(err.message)), error: err };
}
