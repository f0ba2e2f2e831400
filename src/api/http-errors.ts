// Both HTTP doors answer an error the same way: the status from the one table (src/common/errors.ts), except that the
// HTTP server's own client errors (bad JSON, schema, body too large, wrong content type) keep the 4xx it chose.

import { oneLine, scrubHostPaths, toWire, type SiloError } from '../common/errors.js';

export interface HttpError {
  status: number;
  code: string;
  message: string;
  /** The service's error, when it was one (fields for the door's own wording). */
  error?: SiloError;
}

export function toHttpError(e: unknown): HttpError {
  const fe = e as { statusCode?: number; code?: string; message?: string; name?: string } | null;
  if (fe && fe.name !== 'SiloError' && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: fe.code ?? 'SILO_BAD_REQUEST', message: scrubHostPaths(oneLine(fe.message ?? 'bad request')) };
  }
  const w = toWire(e);
  return { status: w.http, code: w.code, message: w.message, error: w.error };
}
