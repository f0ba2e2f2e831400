// `silo start [-a] [-i] CONTAINER...` and `silo attach CONTAINER`

import { call, enc, resolveSystem, upgrade } from '../client.js';
import { asStartFailure, CliError, eachTarget } from '../errors.js';
import { normalizeSignal } from '../flags.js';
import { runSession } from './session.js';
import type { ComputeSystemRecord } from '../../compute/types.js';

export async function start(refs: string[], f: { attach?: boolean; interactive?: boolean }): Promise<number> {
  if (!f.attach && !f.interactive) {
    return eachTarget(refs, async (ref) => {
      await call('POST', `/v1/systems/${enc(ref)}/start`).catch((e: unknown) => {
        throw asStartFailure(e);
      });
      process.stdout.write(`${ref}\n`);
    });
  }
  if (refs.length > 1) throw new CliError('you cannot start and attach multiple containers at once');
  const rec = await resolveSystem(refs[0]);
  return attachSession(rec, !!f.interactive && rec.Init?.Stdin !== false, true, () =>
    call('POST', `/v1/systems/${enc(rec.Id)}/start`).then(
      () => {},
      (e: unknown) => {
        throw asStartFailure(e);
      },
    ),
  );
}

/** Attach to a running container's init: its output, and its stdin unless --no-stdin (when it was created with -i).
 *  Ends with the container, whose exit code it returns; signals go to it (--sig-proxy, as docker's default). */
export async function attach(ref: string, f: { stdin?: boolean; sigProxy?: boolean }): Promise<number> {
  const rec = await resolveSystem(ref);
  if (rec.State !== 'Running') throw new CliError(`You cannot attach to a ${rec.State === 'Paused' ? 'paused' : 'stopped'} container, ${rec.State === 'Paused' ? 'unpause' : 'start'} it first`);
  return attachSession(rec, f.stdin !== false && !!rec.Init?.Stdin, f.sigProxy !== false);
}

/** A session on the init's stdio (started by `start` once attached, if given) until it ends; its exit code. */
async function attachSession(rec: ComputeSystemRecord, stdin: boolean, sigProxy: boolean, start?: () => Promise<void>): Promise<number> {
  const base = `/v1/systems/${enc(rec.Id)}`;
  const socket = await upgrade('POST', `${base}/attach${stdin ? '?stdin=1' : ''}`);
  await runSession({
    socket,
    tty: !!rec.Init?.Tty,
    stdin,
    ...(start ? { start } : {}),
    resize: (h, w) => call('POST', `${base}/resize?h=${h}&w=${w}`),
    ...(sigProxy ? { signal: (s: string) => call('POST', `${base}/signal`, { Signal: normalizeSignal(s) }) } : {}),
  });
  const r = await call<{ ExitCode: number }>('POST', `${base}/wait`);
  return r.ExitCode;
}
