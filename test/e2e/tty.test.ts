// An interactive shell with a tty, through the native API's hijacked attach stream (what `silo run -it` uses).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonApi, ttyShellWalk } from './native-client.js';
import { TestDaemon } from './harness.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

const api = jsonApi(d.socket);

test('run -it: a shell with a tty answers, and its exit code comes back', () => ttyShellWalk(d.socket));

test('bad requests get one-line 4xx answers and change nothing', async () => {
  const before = (await api('GET', '/v1/systems?all=1')).json.length;
  const r1 = await api('POST', '/v1/systems', { Image: 'busybox', Name: 'bad name!' });
  assert.equal(r1.status, 400);
  const r2 = await api('POST', '/v1/systems', { Image: 'busybox', Document: { Container: { MappedDirectories: [{ HostPath: 'relative', ContainerPath: '/x' }] } } });
  assert.equal(r2.status, 400);
  assert.match(r2.json.message, /must be absolute/);
  const r3 = await api('POST', '/v1/systems', { Image: 'busybox', Document: { Isolation: 'bogus' } });
  assert.equal(r3.status, 400);
  const r4 = await api('POST', '/v1/systems/nope/start');
  assert.equal(r4.status, 404);
  assert.equal((await api('GET', '/v1/systems?all=1')).json.length, before);
});
