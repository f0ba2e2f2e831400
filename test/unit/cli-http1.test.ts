// The CLI's own HTTP/1.1 (src/cli/http1.ts) against a unix socket that writes answers byte-exact, in awkward pieces.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { dechunk, exchange, readBody } from '../../src/cli/http1.js';
import { fakeSocket } from './fake-daemon.js';

const { dir, sock } = fakeSocket('silo-test-http1-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A server that answers each connection with `pieces`, written one by one a tick apart, then ends it (or not). */
async function serve(pieces: (string | Buffer)[], end = true): Promise<{ close(): void; request: Promise<string> }> {
  let gotRequest!: (s: string) => void;
  const request = new Promise<string>((r) => (gotRequest = r));
  const srv = createServer((s: Socket) => {
    let req = '';
    s.on('data', async (c) => {
      req += c;
      if (!req.includes('\r\n\r\n')) return;
      const len = /content-length: (\d+)/i.exec(req);
      if (len && req.length - req.indexOf('\r\n\r\n') - 4 < Number(len[1])) return;
      gotRequest(req);
      for (const p of pieces) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 2));
      }
      if (end) s.end();
    });
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  return { close: () => srv.close(), request };
}

test('a request goes out in one piece with Host and its payload; a Content-Length body is read across pieces', { timeout: 5000 }, async () => {
  const srv = await serve(['HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len', 'gth: 11\r\n\r\n{"a":', '[1,2]}'], false);
  try {
    const a = await exchange(sock, 'POST', '/v1/x?y=1', { 'Content-Length': 7 }, Buffer.from('{"b":2}'));
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-type'], 'application/json');
    assert.equal((await readBody(a, 'POST')).toString(), '{"a":[1,2]}');
    assert.equal(await srv.request, 'POST /v1/x?y=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7\r\n\r\n{"b":2}');
  } finally {
    srv.close();
  }
});

test('a chunked body split inside its chunk sizes and data, trailers and all', { timeout: 5000 }, async () => {
  const srv = await serve(['HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r', '\nhel', 'lo\r\n1', '\r\n!\r\n0\r\nX-T: 1\r\n', '\r\n'], false);
  try {
    const a = await exchange(sock, 'GET', '/', {});
    assert.deepEqual([a.status, a.reason], [404, 'Not Found']);
    assert.equal((await readBody(a, 'GET')).toString(), 'hello!');
  } finally {
    srv.close();
  }
});

test('a body without a length ends with the connection; 204 has none', { timeout: 5000 }, async () => {
  let srv = await serve(['HTTP/1.1 500 Internal Server Error\r\n\r\nboom', ' twice']);
  try {
    assert.equal((await readBody(await exchange(sock, 'GET', '/', {}), 'GET')).toString(), 'boom twice');
  } finally {
    srv.close();
  }
  srv = await serve(['HTTP/1.1 204 No Content\r\n\r\n'], false);
  try {
    assert.equal((await readBody(await exchange(sock, 'DELETE', '/', {}), 'DELETE')).length, 0);
  } finally {
    srv.close();
  }
});

test('after a 101 the bytes that came with the head are read first by a later data listener, then the rest', { timeout: 5000 }, async () => {
  const srv = await serve([Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nX-Silo-System: abc\r\nX-A: 1\r\nx-a: 2\r\n\r\n'), Buffer.from('first ')]), 'second']);
  try {
    const a = await exchange(sock, 'POST', '/v1/systems/run', { Connection: 'Upgrade', Upgrade: 'tcp' });
    after(() => a.socket.destroy());
    assert.equal(a.status, 101);
    assert.equal(a.headers['x-silo-system'], 'abc');
    assert.equal(a.headers['x-a'], '1, 2');
    a.socket.unshift(a.rest);
    await new Promise((r) => setTimeout(r, 20)); // nothing is lost while no one listens
    let got = '';
    a.socket.on('data', (c) => (got += c));
    const ended = await Promise.race([new Promise((r) => a.socket.on('end', () => r(true))), new Promise((r) => setTimeout(() => r(false), 2000))]);
    assert.equal(got, 'first second');
    assert.ok(ended);
  } finally {
    srv.close();
  }
});

test('no daemon: the errno of the connect comes back; an answer that is not HTTP is an error', { timeout: 5000 }, async () => {
  await assert.rejects(exchange(`${dir}/none.sock`, 'GET', '/', {}), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  const srv = await serve(['SSH-2.0-x\r\n\r\n']);
  try {
    await assert.rejects(exchange(sock, 'GET', '/', {}), /malformed answer/);
  } finally {
    srv.close();
  }
});

test('dechunk waits for the last chunk and the empty line after it', () => {
  assert.equal(dechunk(Buffer.from('3\r\nabc\r\n')), undefined);
  assert.equal(dechunk(Buffer.from('3\r\nabc\r\n0\r\n')), undefined);
  assert.equal(dechunk(Buffer.from('3;ext=1\r\nabc\r\n0\r\n\r\n'))?.toString(), 'abc');
  assert.throws(() => dechunk(Buffer.from('zz\r\n')), /malformed/);
});
