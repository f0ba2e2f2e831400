// Docker's error contract: `{"message": "..."}` with exactly `application/json` (the CLI prints anything else raw)
// and the status that picks the CLI's error class. Silo's messages are reworded only where the CLI or scripts key
// on docker's wording (No such container, No such image, conflicts).

import { isSiloError, oneLine, SiloError, type ErrorClass } from '../../common/errors.js';

const statusOf: Record<ErrorClass, number> = {
  InvalidArgument: 400,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  FailedPrecondition: 409,
  ResourceExhausted: 500,
  Unavailable: 503,
  Internal: 500,
};

/** An error that carries docker's own status and message verbatim. */
export class DockerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const dockerNotFound = (m: string) => new DockerError(404, m);
export const dockerInvalid = (m: string) => new DockerError(400, m);
export const dockerConflict = (m: string) => new DockerError(409, m);

/** Silo's "no such X: ref" wording → docker's. */
function reword(m: string): string {
  const nf = /^no such (container|image|exec instance|volume): (.*)$/i.exec(m);
  if (nf) {
    const what = nf[1].toLowerCase();
    if (what === 'container') return `No such container: ${nf[2]}`;
    if (what === 'image') return `No such image: ${withTag(nf[2])}`;
    if (what === 'exec instance') return `No such exec instance: ${nf[2]}`;
    return `get ${nf[2]}: no such volume`;
  }
  const net = /^no such network: (.*)$/i.exec(m);
  if (net) return `network ${net[1]} not found`;
  return m;
}

/** Docker names a missing image with its tag: `No such image: foo:latest`. Ids and digests stay as they are. */
export function withTag(ref: string): string {
  if (/^(sha256:)?[a-f0-9]{6,64}$/.test(ref) || ref.includes('@')) return ref;
  const slash = ref.lastIndexOf('/');
  return ref.lastIndexOf(':') > slash ? ref : `${ref}:latest`;
}

export function toDockerError(e: unknown): { status: number; message: string } {
  if (e instanceof DockerError) return { status: e.status, message: e.message };
  if (isSiloError(e)) return { status: statusOf[(e as SiloError).class], message: reword(oneLine(e.message)) };
  const fe = e as { statusCode?: number; message?: string };
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, message: oneLine(fe.message ?? 'bad request') };
  }
  return { status: 500, message: oneLine(e) };
}

/** The in-band error line of a JSON message stream (build, load, pull): the CLI fails only on errorDetail. */
export function streamError(e: unknown): string {
  const m = toDockerError(e).message;
  return JSON.stringify({ errorDetail: { message: m }, error: m }) + '\r\n';
}
