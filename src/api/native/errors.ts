import { toHttpError as common } from '../http-errors.js';

export interface ErrorBody {
  message: string;
  code: string;
}

/** Status and one-line body `{message, code}` for any thrown value. */
export function toHttpError(e: unknown): { status: number; body: ErrorBody } {
  const { status, code, message } = common(e);
  return { status, body: { message, code } };
}
