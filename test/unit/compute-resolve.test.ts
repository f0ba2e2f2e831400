import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEnv, mergeEnv, resolveInit, resourcesOf } from '../../src/compute/resolve.js';
import { check } from '../../src/compute/state.js';
import { normalizeSignal } from '../../src/compute/signals.js';
import type { ComputeSystemDocument } from '../../src/compute/types.js';

const doc = (p: ComputeSystemDocument['Process']): ComputeSystemDocument => ({
  Owner: 't',
  SchemaVersion: { Major: 2, Minor: 1 },
  Isolation: 'process',
  Container: { GuestOs: { HostName: 'h' }, Storage: { Image: 'busybox' } },
  Process: p,
});

test('command: image Cmd by default, args replace Cmd, an entrypoint override drops the image Cmd', () => {
  const img = { Entrypoint: ['/ep'], Cmd: ['default'] };
  assert.deepEqual(resolveInit(doc({}), img).Args, ['/ep', 'default']);
  assert.deepEqual(resolveInit(doc({ CommandArgs: ['x'] }), img).Args, ['/ep', 'x']);
  assert.deepEqual(resolveInit(doc({ Entrypoint: ['/other'] }), img).Args, ['/other']);
  assert.deepEqual(resolveInit(doc({ Entrypoint: [], CommandArgs: ['ls'] }), img).Args, ['ls']);
  assert.throws(() => resolveInit(doc({ Entrypoint: [] }), img), /no command specified/);
});

test('working directory: refused at create when relative, the request\'s or the image\'s, as dockerd does', () => {
  assert.equal(resolveInit(doc({ WorkingDirectory: '/tmp/../srv' }), { Cmd: ['x'] }).Cwd, '/tmp/../srv');
  assert.throws(() => resolveInit(doc({ WorkingDirectory: 'rel' }), { Cmd: ['x'] }), /the working directory 'rel' is invalid/);
  assert.throws(() => resolveInit(doc({}), { Cmd: ['x'], WorkingDir: 'rel' }), /the working directory 'rel' is invalid/);
});

test('env: request overrides image by key, PATH always present', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], { B: '3', C: '' }), ['A=1', 'B=3', 'C=', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.throws(() => mergeEnv([], { 'A=B': 'x' }), /invalid environment variable name/);
});

test('resources: HCS processor fields are exclusive; memory floor; pids integer', () => {
  assert.deepEqual(resourcesOf({ Memory: { SizeInMB: 64 }, Processor: { Count: 0.5 }, Pids: { Limit: 50 } }, 2), { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 50 });
  assert.deepEqual(resourcesOf({ Processor: { Maximum: 5000 } }, 4), { cpus: 2 });
  assert.throws(() => resourcesOf({ Processor: { Count: 1, Weight: 10 } }, 2), /mutually exclusive/);
  assert.throws(() => resourcesOf({ Processor: { Count: 3 } }, 2), /Count/);
  assert.throws(() => resourcesOf({ Memory: { SizeInMB: 1 } }, 2), /at least 6/);
  assert.throws(() => resourcesOf({ Pids: { Limit: 1.5 } }, 2), /positive integer/);
});

test('lifecycle table names the state', () => {
  assert.doesNotThrow(() => check('start', 'Created', 'c'));
  assert.throws(() => check('start', 'Running', 'c'), /already running \(state Running\)/);
  assert.throws(() => check('exec', 'Stopped', 'c'), /is not running \(state Stopped\)/);
  assert.throws(() => check('remove', 'Running', 'c'), /stop the container before removing or force remove/);
  assert.throws(() => check('resume', 'Running', 'c'), /not paused/);
});

test('signals: names, numbers, and garbage', () => {
  assert.equal(normalizeSignal('term'), 'SIGTERM');
  assert.equal(normalizeSignal('SIGKILL'), 'SIGKILL');
  assert.equal(normalizeSignal('9'), 'SIGKILL');
  assert.throws(() => normalizeSignal('SIGNOPE'), /invalid signal/);
  assert.throws(() => normalizeSignal('999'), /invalid signal/);
});

test('modify: each resource path changes its field; unknown paths are refused', async () => {
  const { modifiedDocument } = await import('../../src/compute/document.js');
  const base = doc({});
  assert.deepEqual(modifiedDocument(base, { ResourcePath: 'Container/Memory/SizeInMB', Settings: 64 }).Container.Memory, { SizeInMB: 64 });
  assert.deepEqual(modifiedDocument(base, { ResourcePath: 'Container/Pids', Settings: { Limit: 9 } }).Container.Pids, { Limit: 9 });
  assert.deepEqual(modifiedDocument(base, { ResourcePath: 'RestartPolicy', Settings: { Name: 'always' } }).RestartPolicy, { Name: 'always' });
  assert.equal(base.Container.Memory, undefined, 'the input document is not changed');
  assert.throws(() => modifiedDocument(base, { ResourcePath: 'Container/Nope', Settings: 1 }), /unsupported ResourcePath/);
});

test('restart policies: docker rules and back-off', async () => {
  const { shouldRestart, restartDelayMs } = await import('../../src/compute/restart.js');
  const rec = (RestartPolicy: ComputeSystemDocument['RestartPolicy'], extra: object = {}) =>
    ({ Document: { ...doc({}), RestartPolicy }, RestartCount: 0, ExitCode: 1, ...extra }) as never;
  assert.equal(shouldRestart(rec(undefined)), false);
  assert.equal(shouldRestart(rec({ Name: 'always' })), true);
  assert.equal(shouldRestart(rec({ Name: 'always' }, { StoppedByUser: true })), false);
  assert.equal(shouldRestart(rec({ Name: 'on-failure' }, { ExitCode: 0 })), false);
  assert.equal(shouldRestart(rec({ Name: 'on-failure', MaximumRetryCount: 2 }, { RestartCount: 2 })), false);
  assert.equal(shouldRestart(rec({ Name: 'on-failure', MaximumRetryCount: 2 }, { RestartCount: 1 })), true);
  assert.deepEqual([0, 1, 5, 20].map(restartDelayMs), [100, 200, 3200, 10000]);
});

test("createEnv: the caller's variables first, then the image's it does not set, as dockerd orders Config.Env", () => {
  assert.deepEqual(createEnv(['PATH=/p', 'B=2', 'C=3'], { A: '1', B: 'x' }), ['A=1', 'B=x', 'PATH=/p', 'C=3']);
  assert.deepEqual(createEnv(['B=2'], { A: '1' }, ['B']), ['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.deepEqual(createEnv(['PATH=/p'], {}), ['PATH=/p']);
  assert.throws(() => createEnv([], { 'A=B': 'x' }), /invalid environment variable name/);
});

test('mergeEnv: names to unset leave the image\'s environment', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], { C: '3' }, ['A']), ['B=2', 'C=3', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
});
