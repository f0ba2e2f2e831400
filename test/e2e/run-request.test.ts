// `POST /v1/systems/run`: create, attach, start and wait in one upgrade request (what `silo run` uses). Errors before
// the start are plain HTTP errors and leave nothing; after the 101 the stream ends with the exit code, which for an
// AutoRemove'd system comes once it is gone.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Duplex } from 'node:stream';
import { TestDaemon, leaks } from './harness.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

type Answer = { status: number; body: string; id?: string; frames?: { stream: number; data: string }[] };

/** One run request with a raw body; the framed stream read to its end. */
function runRequest(body: string, stdin?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath: d.socket,
      path: `/v1/systems/run${stdin === undefined ? '' : '?stdin=1'}`,
      method: 'POST',
      headers: { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('upgrade', (res, socket: Duplex, head: Buffer) => {
      let buf = head;
      socket.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
      socket.on('end', () => {
        const frames = [];
        for (let off = 0; off + 8 <= buf.length; ) {
          const n = buf.readUInt32BE(off + 4);
          frames.push({ stream: buf[off], data: buf.subarray(off + 8, off + 8 + n).toString() });
          off += 8 + n;
        }
        socket.destroy();
        resolve({ status: res.statusCode!, body: '', id: String(res.headers['x-silo-system']), frames });
      });
      if (stdin !== undefined) socket.end(stdin);
    });
    req.end(body);
  });
}

const spec = (cmd: string[], stdin = false, image = 'busybox') =>
  JSON.stringify({ Image: image, Document: { AutoRemove: true, Process: { CommandArgs: cmd, ...(stdin ? { CreateStdInPipe: true } : {}) } } });

async function nothingLeft(): Promise<void> {
  assert.equal((await d.silo(['ps', '-aq'])).stdout.trim(), '');
}

test('one request: output and stdin framed, the exit code last, an --rm system gone by then', async () => {
  const r = await runRequest(spec(['sh', '-c', 'cat; echo err >&2; exit 7'], true), 'in\n');
  assert.equal(r.status, 101, r.body);
  assert.match(r.id!, /^[0-9a-f]{64}$/);
  assert.deepEqual(r.frames, [
    { stream: 1, data: 'in\n' },
    { stream: 2, data: 'err\n' },
    { stream: 3, data: '{"ExitCode":7}' },
  ]);
  await nothingLeft();
});

test('errors before the start are one-line HTTP errors and leave nothing', async () => {
  const bad = await runRequest('{"Image":');
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).message, /invalid JSON body/);
  const noImage = await runRequest(spec(['true'], false, 'no-such-image:v9'));
  assert.equal(noImage.status, 404);
  assert.match(JSON.parse(noImage.body).message, /no such image/i);
  const unknown = await runRequest(JSON.stringify({ Image: 'busybox', Bogus: 1 }));
  assert.equal(unknown.status, 400, unknown.body);
  const noCmd = await runRequest(spec(['no-such-command']));
  assert.ok(noCmd.status >= 400 && noCmd.status < 600, noCmd.body);
  assert.match(JSON.parse(noCmd.body).message, /not found/);
  await nothingLeft();
});

test('what run --rm held is free for the next command at once: its network can go, its host port be published again', async () => {
  const port = String(20000 + Math.floor(Math.random() * 20000));
  assert.equal((await d.silo(['network', 'create', 'rr-net'])).code, 0);
  for (let i = 0; i < 2; i++) {
    const r = await d.silo(['run', '--rm', '--network', 'rr-net', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true']);
    assert.equal(r.code, 0, r.stderr);
  }
  const rm = await d.silo(['network', 'rm', 'rr-net']);
  assert.equal(rm.code, 0, rm.stderr);
  await nothingLeft();
});

test('run --rm answers before its teardown; a daemon killed during that teardown leaves it to the next one', async () => {
  await d.stop();
  await d.start({ SILO_FAULT_POINTS: 'remove.after-network' });
  const r = await d.silo(['run', '--rm', 'busybox', 'sh', '-c', 'echo bye; exit 4']);
  assert.equal(r.stdout, 'bye\n');
  assert.equal(r.code, 4, r.stderr);
  await d.exited();
  await d.start();
  await nothingLeft();
  const pooled = await d.pooled();
  const left = leaks(d.tag).filter((l) => !pooled(l) && !(l.startsWith('link') && l.includes(':br:')) && !l.startsWith('nft') && !l.startsWith(`process ${d.pid}:`));
  assert.deepEqual(left, []);
});
