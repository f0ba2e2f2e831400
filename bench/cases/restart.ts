// Issue 5's live restore, timed: with N idle containers running, the daemon is SIGKILLed and started again; measured
// from the new daemon's spawn to the first answer of its native API (`GET /v1/version`), and to the moment its list
// shows every container still running. The containers themselves never stop: that is asserted, not timed.

import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Silo } from '../env/silo.js';
import type { NativeClient } from '../lib/native.js';
import { sleep } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface RestartResult {
  containers: number;
  reps: number;
  /** Spawn → first 200 from GET /v1/version. */
  apiMs: Summary;
  /** Spawn → every container listed as Running. */
  allRunningMs: Summary;
  /** Containers not running after a restart, summed over the repetitions (should be 0). */
  lost: number;
}

/** One request on a fresh connection: the keep-alive client's sockets died with the old daemon. */
function answers(socketPath: string, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function until<T>(deadline: number, probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error('the restarted daemon did not answer within 60 s');
    await sleep(5);
  }
}

export async function restartTimes(silo: Silo, native: NativeClient, count: number, reps: number, log: (m: string) => void): Promise<RestartResult> {
  const ids: string[] = [];
  const api: number[] = [];
  const all: number[] = [];
  let lost = 0;
  try {
    for (let i = 0; i < count; i += 8) {
      const batch = Array.from({ length: Math.min(8, count - i) }, async () => {
        const { Id } = await native.request<{ Id: string }>('POST', '/v1/systems', { Image: 'busybox', Document: { Process: { CommandArgs: ['sleep', '3600'] } } });
        ids.push(Id);
        await native.request('POST', `/v1/systems/${Id}/start`);
      });
      await Promise.all(batch);
    }
    for (let r = 0; r < reps; r++) {
      const { spawnedAt } = await silo.killAndRespawn();
      const deadline = spawnedAt + 60_000;
      await until(deadline, () => answers(silo.socket, '/v1/version'));
      api.push(performance.now() - spawnedAt);
      const running = async () => {
        const body = await answers(silo.socket, '/v1/systems');
        const list = body ? (JSON.parse(body) as { Id: string; State: string }[]) : [];
        const up = new Set(list.filter((s) => s.State === 'Running').map((s) => s.Id));
        return ids.every((id) => up.has(id)) ? true : undefined;
      };
      // Adoption is part of start-up, so the list is complete at the first answer; a lost container shows here.
      const ok = await until(spawnedAt + 10_000, running).catch(() => false);
      all.push(performance.now() - spawnedAt);
      if (!ok) {
        const body = await answers(silo.socket, '/v1/systems');
        const up = new Set((body ? (JSON.parse(body) as { Id: string; State: string }[]) : []).filter((s) => s.State === 'Running').map((s) => s.Id));
        lost += ids.filter((id) => !up.has(id)).length;
      }
      log(`restart with ${count} running: API after ${api[r].toFixed(0)} ms, all listed running after ${all[r].toFixed(0)} ms`);
      await sleep(1000);
    }
  } finally {
    // The keep-alive client's sockets went with the first daemon; remove through fresh connections.
    for (const id of ids) await new Promise((r) => http.request({ socketPath: silo.socket, path: `/v1/systems/${id}?force=1`, method: 'DELETE', agent: false }, (res) => (res.resume(), res.on('end', r))).on('error', r).end());
  }
  return { containers: count, reps, apiMs: summarize(api), allRunningMs: summarize(all), lost };
}
