// Docker's restart policies, as pure rules.

import type { ComputeSystemRecord } from './types.js';

/** `always` and `unless-stopped` unless a user stopped it; `on-failure` on a non-zero exit, within its retry count. */
export function shouldRestart(rec: ComputeSystemRecord): boolean {
  const p = rec.Document.RestartPolicy;
  if (!p || p.Name === 'no' || rec.StoppedByUser || rec.Document.AutoRemove) return false;
  if (p.Name === 'on-failure') return (rec.ExitCode ?? 0) !== 0 && (!p.MaximumRetryCount || rec.RestartCount < p.MaximumRetryCount);
  return true;
}

/** A back-off that doubles with each restart, 100 ms up to 10 s, as docker's restart manager. */
export const restartDelayMs = (restarts: number): number => Math.min(100 * 2 ** restarts, 10_000);
