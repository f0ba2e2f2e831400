// Tiny verbs on several containers: stop, restart, kill, rm, pause, unpause, wait, rename.

import { call, enc } from '../client.js';
import { eachTarget } from '../errors.js';
import { normalizeSignal, parseInteger } from '../flags.js';

const out = (s: string) => process.stdout.write(`${s}\n`);
const sys = (ref: string) => `/v1/systems/${enc(ref)}`;

/** The shutdown request of stop and restart: -t and -s. */
function shutdownBody(f: { time?: string; signal?: string }): { TimeoutSeconds?: number; Signal?: string } {
  return {
    ...(f.time !== undefined ? { TimeoutSeconds: parseInteger(f.time, '--time', 0) } : {}),
    ...(f.signal !== undefined ? { Signal: normalizeSignal(f.signal) } : {}),
  };
}

export function stop(refs: string[], f: { time?: string; signal?: string }): Promise<number> {
  const body = shutdownBody(f);
  return eachTarget(refs, async (r) => {
    await call('POST', `${sys(r)}/shutdown`, body);
    out(r);
  });
}

/** As docker restart: a running container is stopped (SIGTERM, then SIGKILL after -t), then it is started. */
export function restart(refs: string[], f: { time?: string; signal?: string }): Promise<number> {
  const body = shutdownBody(f);
  return eachTarget(refs, async (r) => {
    await call('POST', `${sys(r)}/shutdown`, body);
    await call('POST', `${sys(r)}/start`);
    out(r);
  });
}

export async function rename(ref: string, name: string): Promise<number> {
  await call('POST', `${sys(ref)}/rename`, { Name: name });
  return 0;
}

export function kill(refs: string[], f: { signal?: string }): Promise<number> {
  const Signal = normalizeSignal(f.signal ?? 'KILL');
  return eachTarget(refs, async (r) => {
    await call('POST', `${sys(r)}/signal`, { Signal });
    out(r);
  });
}

export function rm(refs: string[], f: { force?: boolean }): Promise<number> {
  return eachTarget(refs, async (r) => {
    await call('DELETE', f.force ? `${sys(r)}?force=1` : sys(r));
    out(r);
  });
}

export function pause(refs: string[]): Promise<number> {
  return eachTarget(refs, async (r) => {
    await call('POST', `${sys(r)}/pause`);
    out(r);
  });
}

export function unpause(refs: string[]): Promise<number> {
  return eachTarget(refs, async (r) => {
    await call('POST', `${sys(r)}/resume`);
    out(r);
  });
}

export function wait(refs: string[]): Promise<number> {
  return eachTarget(refs, async (r) => {
    const res = await call<{ ExitCode: number }>('POST', `${sys(r)}/wait`);
    out(String(res.ExitCode));
  });
}
