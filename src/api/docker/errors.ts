// Docker's error contract: `{"message": "..."}` with exactly `application/json` (the CLI prints anything else raw)
// and the status that picks the CLI's error class. Silo's messages are reworded only where the CLI or scripts key
// on docker's wording (No such container, No such image, conflicts).

import { SiloError, type ErrorClass } from '../../common/errors.js';
import { toHttpError } from '../http-errors.js';

const classOfStatus: Record<number, ErrorClass> = { 400: 'InvalidArgument', 404: 'NotFound', 409: 'Conflict', 501: 'Unimplemented' };

/** A Silo error worded as docker words it, for the status docker gives; its message goes out verbatim. */
export class DockerError extends SiloError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(classOfStatus[status] ?? 'Internal', 'SILO_DOCKER', message);
    this.status = status;
  }
}

export const dockerNotFound = (m: string) => new DockerError(404, m);
export const dockerInvalid = (m: string) => new DockerError(400, m);
export const dockerConflict = (m: string) => new DockerError(409, m);

/** Silo's "no such X: ref" → docker's wording, from the error's fields. */
function reword(e: SiloError | undefined, m: string): string {
  const kind = e?.fields.kind;
  const ref = String(e?.fields.ref ?? '');
  if (e?.class !== 'NotFound' || typeof kind !== 'string') return m;
  if (kind === 'container') return `No such container: ${ref}`;
  if (kind === 'image') return `No such image: ${withTag(ref)}`;
  if (kind === 'exec instance') return `No such exec instance: ${ref}`;
  if (kind === 'volume') return `get ${ref}: no such volume`;
  if (kind === 'network') return `network ${ref} not found`;
  return m;
}

/** Docker names a missing image with its tag: `No such image: foo:latest`. Ids and digests stay as they are. */
export function withTag(ref: string): string {
  if (/^(sha256:)?[a-f0-9]{6,64}$/.test(ref) || ref.includes('@')) return ref;
  const slash = ref.lastIndexOf('/');
  return ref.lastIndexOf(':') > slash ? ref : `${ref}:latest`;
}

export function toDockerError(e: unknown): { status: number; message: string } {
  const h = toHttpError(e);
  if (e instanceof DockerError) return { status: e.status, message: h.message };
  return { status: h.status, message: reword(h.error, h.message) };
}

/** The in-band error line of a JSON message stream (build, load, pull): the CLI fails only on errorDetail. */
export function streamError(e: unknown): string {
  const m = toDockerError(e).message;
  return JSON.stringify({ errorDetail: { message: m }, error: m }) + '\r\n';
}
