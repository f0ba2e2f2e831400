// A stop that arrives while the system's exit is being recorded (a pod's attach ends with its shell, and the kubelet
// or critest stops the pod at once): the stop must see the exit, not wait for a next one that never comes. Stub
// backend: pure logic of the compute service.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExitStatus, Isolation, IsolationBackend } from '../../src/compute/backend.js';
import { ComputeService } from '../../src/compute/service.js';
import { SystemStore } from '../../src/compute/store.js';
import { IntentLog } from '../../src/common/intents.js';
import { EventBus } from '../../src/common/events.js';
import type { NetworkService } from '../../src/network/types.js';
import type { StorageService } from '../../src/storage/types.js';
import { captureLog } from './log-capture.js';
import { stubRecord } from './compute-record.js';

const ID = 'a'.repeat(64);

const record = () => stubRecord(ID, 'process', 'Running', 'racer');

async function running(dir: string) {
  await new SystemStore(join(dir, 'systems')).save(record());
  const backend = {
    state: async () => ({ status: 'running' }),
    exitStatus: async () => undefined,
    waitExit: () => new Promise<ExitStatus>(() => {}),
    kill: async () => {},
    unmountRoot: async () => {},
    list: async () => [ID],
  } as unknown as IsolationBackend;
  const storage = { listRoots: async () => [ID] } as unknown as StorageService;
  const network = { listNamespaces: () => [], listEndpoints: () => [] } as unknown as NetworkService;
  const { log } = captureLog();
  const compute = new ComputeService({
    store: new SystemStore(join(dir, 'systems')),
    storage,
    backends: new Map<Isolation, IsolationBackend>([['process', backend]]),
    network,
    intents: new IntentLog(join(dir, 'intents')),
    events: new EventBus(),
    log,
  });
  await compute.restore();
  return compute;
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what} still waiting after ${ms} ms`)), ms).unref())]);

for (const stop of ['terminate', 'shutdown'] as const) {
  test(`${stop} while the exit is being recorded returns once it is`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'silo-unit-stop-race-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const compute = await running(dir);
    // The exit is being recorded (it holds the system's lock across its save) when the stop comes in.
    const recorded = compute.recordExit(ID, { exitCode: 0, finishedAt: new Date().toISOString() });
    const stopped = stop === 'terminate' ? compute.terminate(ID) : compute.shutdown(ID, { TimeoutSeconds: 30 });
    await recorded;
    await within(stopped, 3000, stop);
    assert.equal(compute.get(ID).State, 'Stopped');
    assert.equal(compute.get(ID).StoppedByUser, true);
  });
}
