import { isSiloError, oneLine, type ErrorClass } from '../../common/errors.js';

/** The one table from error class to HTTP status for the native API. */
export const statusOf: Record<ErrorClass, number> = {
  InvalidArgument: 400,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  FailedPrecondition: 409,
  ResourceExhausted: 507,
  Unavailable: 503,
  Internal: 500,
};

export interface ErrorBody {
  message: string;
  code: string;
}

/** Status and one-line body for any thrown value; fastify's own client errors (bad JSON, schema) keep their 4xx. */
export function toHttpError(e: unknown): { status: number; body: ErrorBody } {
  if (isSiloError(e)) return { status: statusOf[e.class], body: { message: oneLine(e.message), code: e.code } };
  const fe = e as { statusCode?: number; code?: string; validation?: unknown; message?: string };
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { message: oneLine(fe.message ?? 'bad request'), code: fe.code ?? 'SILO_BAD_REQUEST' } };
  }
  const errno = (e as NodeJS.ErrnoException)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return { status: 507, body: { message: `the state directory is full: ${oneLine(e)}`, code: 'SILO_DISK_FULL' } };
  }
  return { status: 500, body: { message: oneLine(e), code: 'SILO_INTERNAL' } };
}
