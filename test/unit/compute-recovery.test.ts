// Restore (the compute service adopting an earlier daemon's systems) with two isolation modes: each system is adopted by the backend its document records, and runtime state a
// backend holds for a system of another mode (or of none) is an orphan of that backend. Stub backends: pure logic.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExitStatus, Isolation, IsolationBackend, RuntimeState } from '../../src/compute/backend.js';
import { ComputeService } from '../../src/compute/service.js';
import { SystemStore } from '../../src/compute/store.js';
import type { ComputeSystemRecord } from '../../src/compute/types.js';
import { IntentLog } from '../../src/common/intents.js';
import { EventBus } from '../../src/common/events.js';
import type { NetworkService } from '../../src/network/types.js';
import type { StorageService } from '../../src/storage/types.js';
import { captureLog } from './log-capture.js';
import { stubRecord } from './compute-record.js';

/** A backend that knows some systems' runtime states and records what it is asked. */
function stubBackend(states: Record<string, RuntimeState['status']>, exits: Record<string, ExitStatus> = {}) {
  const calls: string[] = [];
  const b = {
    state: async (id: string) => (calls.push(`state ${id}`), { status: states[id] ?? 'stopped' }),
    exitStatus: async (id: string) => (calls.push(`exitStatus ${id}`), exits[id]),
    waitExit: (id: string) => (calls.push(`waitExit ${id}`), new Promise<ExitStatus>(() => {})),
    delete: async (id: string) => void calls.push(`delete ${id}`),
    unmountRoot: async (id: string) => void calls.push(`unmountRoot ${id}`),
    resume: async (id: string) => void calls.push(`resume ${id}`),
    mountRoot: async (id: string) => void calls.push(`mountRoot ${id}`),
    list: async () => Object.keys(states),
  } as unknown as IsolationBackend;
  return { b, calls };
}

const id = (c: string) => c.repeat(64);

const record = (i: string, isolation: Isolation | undefined, state: ComputeSystemRecord['State']) => stubRecord(i, isolation, state);

test('recovery adopts each system with the backend of its isolation mode', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-unit-recovery-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [pa, vb, vc, old, lost] = [id('a'), id('b'), id('c'), id('d'), id('e')];

  // Stored records: a process system and two vm systems that ran, and a record older than the Isolation field.
  const seed = new SystemStore(join(dir, 'systems'));
  await seed.save(record(pa, 'process', 'Running'));
  await seed.save(record(vb, 'vm', 'Running'));
  await seed.save(record(vc, 'vm', 'Running'));
  await seed.save(record(old, undefined, 'Paused'));

  // The process backend has `pa` and `old` (paused), and runtime state of vm system `vb` (an orphan there) and of
  // `lost`, which has no record at all. The vm backend has `vb` running; `vc` ended meanwhile with code 7.
  const proc = stubBackend({ [pa]: 'running', [old]: 'paused', [vb]: 'running', [lost]: 'running' });
  const vm = stubBackend({ [vb]: 'running' }, { [vc]: { exitCode: 7, finishedAt: '2026-01-01T00:00:00Z' } });
  const backends = new Map<Isolation, IsolationBackend>([['process', proc.b], ['vm', vm.b]]);

  const storage = {
    describeRoot: async () => ({ layers: ['/nonexistent'], scratch: { path: '/nonexistent.img', format: 'ext4', sizeBytes: 1 << 26 }, overlayOptions: [] }),
    removeRoot: async () => {},
    listRoots: async () => [],
  } as unknown as StorageService;
  const network = { listNamespaces: () => [], listEndpoints: () => [], deleteSandbox: async () => {} } as unknown as NetworkService;
  const store = new SystemStore(join(dir, 'systems'));
  const intents = new IntentLog(join(dir, 'intents'));
  const { log, lines: logs } = captureLog();
  const compute = new ComputeService({ store, storage, backends, network, intents, events: new EventBus(), log });

  const report = await compute.restore();

  assert.deepEqual(logs, []);
  assert.deepEqual(compute.isolations(), ['process', 'vm']);
  assert.equal(report.adopted, 3);
  assert.equal(report.exited, 1);
  assert.equal(report.orphansRemoved, 2);

  // Each system's runtime was asked of its own backend only, and watched there.
  for (const [b, mine, others] of [[proc, [pa, old], [vc]], [vm, [vb, vc], [pa, old]]] as const) {
    for (const i of mine) assert.ok(b.calls.includes(`state ${i}`), `state of ${i.slice(0, 4)} asked of its backend`);
    for (const i of others) assert.ok(!b.calls.includes(`state ${i}`), `state of ${i.slice(0, 4)} not asked of another backend`);
  }
  assert.ok(proc.calls.includes(`waitExit ${pa}`) && proc.calls.includes(`waitExit ${old}`));
  assert.ok(vm.calls.includes(`waitExit ${vb}`) && !proc.calls.includes(`waitExit ${vb}`));

  // The vm system that ended has the exit code the vm backend recorded.
  assert.ok(vm.calls.includes(`exitStatus ${vc}`));
  assert.equal(store.find(vc).State, 'Stopped');
  assert.equal(store.find(vc).ExitCode, 7);
  assert.equal(store.find(old).State, 'Paused');

  // Orphans: the process backend's state for the vm system and for the system without a record; nothing else.
  assert.deepEqual(proc.calls.filter((c) => c.startsWith('delete')).sort(), [`delete ${vb}`, `delete ${lost}`].sort());
  assert.deepEqual(vm.calls.filter((c) => c.startsWith('delete')), []);
});

test('a system whose isolation mode this host no longer offers is left as it is, with one line of log', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-unit-recovery-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const v = id('9');
  await new SystemStore(join(dir, 'systems')).save(record(v, 'vm', 'Running'));
  const proc = stubBackend({});
  const backends = new Map<Isolation, IsolationBackend>([['process', proc.b]]);
  const storage = { listRoots: async () => [v], removeRoot: async () => assert.fail('its root is not an orphan') } as unknown as StorageService;
  const network = { listNamespaces: () => [], listEndpoints: () => [] } as unknown as NetworkService;
  const store = new SystemStore(join(dir, 'systems'));
  const intents = new IntentLog(join(dir, 'intents'));
  const { log, lines: logs } = captureLog();
  const compute = new ComputeService({ store, storage, backends, network, intents, events: new EventBus(), log });
  await compute.restore();
  assert.equal(store.find(v).State, 'Running');
  assert.equal(logs.length, 1);
  assert.match(logs[0], /isolation "vm", which this host does not offer/);
  assert.deepEqual(proc.calls.filter((c) => c.startsWith('state')), []);
});

test('record reads hand out copies: changing one changes nothing until it is saved', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-unit-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new SystemStore(join(dir, 'systems'));
  const r = record(id('7'), 'process', 'Created');
  await store.save(r);
  r.State = 'Running'; // the caller's object is not the stored one either
  const a = store.find(r.Id);
  assert.equal(a.State, 'Created');
  a.State = 'Stopped';
  a.Document.Container.GuestOs.HostName = 'changed';
  assert.equal(store.find(r.Id).State, 'Created');
  assert.equal(store.all()[0].Document.Container.GuestOs.HostName, 'h');
  await store.save(a);
  assert.equal(store.find(r.Id).State, 'Stopped');
  const again = new SystemStore(join(dir, 'systems'));
  await again.load();
  assert.equal(again.find(r.Id).Document.Container.GuestOs.HostName, 'changed');
});

test('restore thaws a system frozen while its record says running, and keeps a recorded pause', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-unit-recovery-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [frozen, paused] = [id('1'), id('2')];
  const seed = new SystemStore(join(dir, 'systems'));
  await seed.save(record(frozen, 'process', 'Running'));
  await seed.save(record(paused, 'process', 'Paused'));
  const proc = stubBackend({ [frozen]: 'paused', [paused]: 'paused' });
  const backends = new Map<Isolation, IsolationBackend>([['process', proc.b]]);
  const storage = { listRoots: async () => [] } as unknown as StorageService;
  const network = { listNamespaces: () => [], listEndpoints: () => [] } as unknown as NetworkService;
  const store = new SystemStore(join(dir, 'systems'));
  const compute = new ComputeService({ store, storage, backends, network, intents: new IntentLog(join(dir, 'intents')), events: new EventBus(), log: captureLog().log });
  const report = await compute.restore();
  assert.equal(report.thawed, 1);
  assert.deepEqual(proc.calls.filter((c) => c.startsWith('resume')), [`resume ${frozen}`]);
  assert.equal(store.find(frozen).State, 'Running');
  assert.equal(store.find(paused).State, 'Paused');
});
