// Front doors that load their server on first use (src/host/lazy-door.ts): a probe that connects and leaves loads
// nothing; the first bytes reach the loaded server intact; a half-closed client still reads the answer; a load that
// failed is tried again by the next client; close ends the connections it handed over.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { fastifyDoor, lazyDoor } from '../../src/host/lazy-door.js';

const dial = (path: string) =>
  new Promise<Socket>((res, rej) => {
    const s = connect(path);
    s.once('connect', () => res(s));
    s.once('error', rej);
  });

/** Send a request, half-close, read everything the server sends until it ends. */
async function ask(path: string, req: string): Promise<string> {
  const s = await dial(path);
  let out = '';
  s.on('data', (b) => (out += b));
  const ended = new Promise((r) => s.once('end', r));
  s.end(req);
  await ended;
  s.destroy();
  return out;
}

test('an HTTP door loads on the first bytes, not on a bare connection, and serves half-closed clients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-lazy-'));
  const path = join(dir, 'door.sock');
  let loads = 0;
  const door = await lazyDoor(path, 'data', async () => {
    loads++;
    const app = Fastify();
    app.post('/echo', async (req) => ({ got: (req.body as { x: string }).x.length }));
    return fastifyDoor(app);
  }, (e) => assert.fail(String(e)));
  try {
    const probe = await dial(path);
    probe.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(loads, 0, 'a probe loaded the server');
    const body = JSON.stringify({ x: 'y'.repeat(200_000) });
    const req = `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const [a, b] = await Promise.all([ask(path, req), ask(path, req)]);
    for (const r of [a, b]) assert.match(r, /^HTTP\/1.1 200[\s\S]*\{"got":200000\}$/);
    assert.equal(loads, 1);
  } finally {
    await door.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(existsSync(path), false);
});

test('a door whose load failed tries again for the next client; close ends a kept-alive connection', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-lazy-'));
  const path = join(dir, 'door.sock');
  let loads = 0;
  const errors: unknown[] = [];
  const door = await lazyDoor(path, 'connection', async () => {
    if (++loads === 1) throw new Error('not yet');
    const app = Fastify();
    app.get('/', async () => 'ok');
    return fastifyDoor(app);
  }, (e) => errors.push(e));
  try {
    const first = await dial(path);
    await new Promise((r) => first.once('close', r));
    assert.equal(errors.length, 1);
    const kept = await dial(path);
    let got = '';
    kept.on('data', (b) => (got += b));
    kept.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!got.endsWith('ok')) await new Promise((r) => setTimeout(r, 10));
    const closed = new Promise((r) => kept.once('close', r));
    await door.close();
    await closed;
    assert.equal(loads, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
