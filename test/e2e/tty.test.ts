// An interactive shell with a tty, through the native API's hijacked attach stream (what `silo run -it` uses).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { upgrade as upgradeStream } from './native-client.js';
import { TestDaemon } from './harness.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: d.socket, method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (r) => {
      let s = '';
      r.on('data', (b) => (s += b));
      r.on('end', () => res({ status: r.statusCode!, json: s ? JSON.parse(s) : undefined }));
    });
    req.on('error', rej);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const upgrade = (path: string) => upgradeStream(d.socket, path);

test('run -it: a shell with a tty answers, and its exit code comes back', async () => {
  const c = await api('POST', '/v1/systems', { Image: 'busybox', Document: { Process: { CommandArgs: ['sh'], EmulateConsole: true, CreateStdInPipe: true }, AutoRemove: true } });
  assert.equal(c.status, 201, JSON.stringify(c.json));
  const id = c.json.Id;
  const sock = await upgrade(`/v1/systems/${id}/attach?stdin=1`);
  let out = '';
  sock.on('data', (b: Buffer) => (out += b.toString()));
  const ended = new Promise((r) => sock.on('end', r));
  const wait = api('POST', `/v1/systems/${id}/wait?condition=next-exit`);
  assert.equal((await api('POST', `/v1/systems/${id}/start`)).status, 204);
  assert.equal((await api('POST', `/v1/systems/${id}/resize?h=40&w=100`)).status, 204);
  sock.write('tty; stty size; echo marker-$((6*7))\nexit 4\n');
  await ended;
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.match(out, /40 100/);
  assert.match(out, /marker-42/);
  assert.equal((await wait).json.ExitCode, 4);
});

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
