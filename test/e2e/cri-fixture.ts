// One CRI test file's daemon, client and log directory, as a kubelet would have them: the daemon starts before the
// file's tests, and after them the client closes, the file's own cleanup runs and the daemon is checked for leaks.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, TestDaemon } from './harness.js';
import { criClient, type CriClient } from './cri-client.js';

export interface CriFixture {
  d: TestDaemon;
  /** The pods' log directory (the kubelet's /var/log/pods), removed after the file. */
  logDir: string;
  /** The client of the daemon now running: it follows a `restarted()` daemon. */
  c: CriClient;
  /** Connect to the daemon started again (after `d.kill()` and `d.start()`). */
  restarted(): void;
}

export function criFixture(name: string, cleanup?: (d: TestDaemon) => Promise<void>): CriFixture {
  const d = new TestDaemon();
  const logDir = mkdtempSync(join(tmpdir(), `silo-test-${name}-`));
  let current: CriClient | undefined;
  const connect = () => {
    current?.close();
    current = criClient(`${d.runDir}/cri.sock`);
  };
  // Whatever the client offers, asked of the one connected now.
  const c = new Proxy({} as CriClient, { get: (_t, k: keyof CriClient) => current![k] });
  before(async () => {
    await d.start();
    connect();
  });
  after(async () => {
    current?.close();
    rmSync(logDir, { recursive: true, force: true });
    await cleanup?.(d);
    assert.deepEqual(await d.teardown(), []);
  });
  return { d, logDir, c, restarted: connect };
}

/**
 * A failed run's leftovers for a file's cleanup: its pods (a VM pod's QEMU is in the pod cgroup the test made), then
 * that cgroup and its kubepods parent in every hierarchy.
 */
export async function removePods(d: TestDaemon, podCgroup: string): Promise<void> {
  const cc = criClient(`${d.runDir}/cri.sock`);
  const pods = await Promise.race([cc.runtime.ListPodSandbox({}), sleep(10_000).then(() => ({ items: [] }))]).catch(() => ({ items: [] }));
  for (const p of pods.items) await cc.runtime.RemovePodSandbox({ pod_sandbox_id: p.id }).catch(() => {});
  cc.close();
  for (const ctl of readdirSync('/sys/fs/cgroup')) {
    for (const dir of [podCgroup, `${d.tag}/kubepods`]) await rmdir(`/sys/fs/cgroup/${ctl}/${dir}`).catch(() => {});
  }
}
