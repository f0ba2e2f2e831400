// The real `silo` binary against a fake daemon on a unix socket: argument parsing, the requests it sends, exit codes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { rmSync } from 'node:fs';
import { fakeSocket, frame, readBody, replyJson, runSilo } from './fake-daemon.js';

const { dir, sock } = fakeSocket('silo-cli-');
const ID = 'f'.repeat(64);
const seen: { method: string; url: string; body: any }[] = [];
let server: Server;

before(async () => {
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    seen.push({ method: req.method!, url: req.url!, body });
    const json = replyJson(res);
    if (req.url === '/v1/systems' && req.method === 'POST') {
      if (body.Image === 'missing') return json(404, { message: 'no such image: missing', code: 'SILO_NOT_FOUND' });
      return json(201, { Id: ID, Warnings: [] });
    }
    // What the real daemon answers when the registry does not have the image either.
    if (req.url === '/v1/images/pull?ref=missing') return json(404, { message: "pull access denied for missing, repository does not exist or may require 'silo login'", code: 'SILO_NOT_FOUND' });
    if (req.url === `/v1/systems/${ID}/start`) {
      if (seen.some((s) => s.body?.Document?.Process?.CommandArgs?.[0] === 'nosuch'))
        return json(500, { message: 'runc create failed: exec: "nosuch": executable file not found in $PATH' });
      return json(204);
    }
    if (req.url?.startsWith(`/v1/systems/${ID}/wait`)) return json(200, { ExitCode: 3 });
    if (req.url === `/v1/systems/${ID}` && req.method === 'GET') return json(404, { message: 'no such container' });
    if (req.url === '/v1/systems/nope/shutdown') return json(404, { message: 'no such container: nope' });
    if (req.url?.endsWith('/shutdown')) return json(204);
    json(404, { message: `no route ${req.method} ${req.url}` });
  });
  server.on('upgrade', (req, socket, head: Buffer) => {
    if (req.url?.startsWith('/v1/systems/run')) return fakeRun(req, socket, head);
    seen.push({ method: req.method!, url: req.url!, body: undefined });
    socket.on('error', () => {});
    socket.on('close', () => clearInterval(t));
    socket.write('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    // output arrives only after start, like a real container
    const t = setInterval(() => {
      if (!seen.some((s) => s.url.endsWith('/start'))) return;
      clearInterval(t);
      if (!socket.destroyed) socket.end(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]));
    }, 5);
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

/** The one request of an attached run: the create body, then an error or the 101 and the framed stream. */
function fakeRun(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const len = Number(req.headers['content-length']);
  let buf = head;
  const answer = () => {
    const body = JSON.parse(buf.subarray(0, len).toString());
    seen.push({ method: req.method!, url: req.url!, body });
    const error = (status: number, message: string) =>
      socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ message })}`);
    if (body.Image === 'missing') return void error(404, 'no such image: missing');
    if (body.Document?.Process?.CommandArgs?.[0] === 'nosuch') return void error(500, 'runc create failed: exec: "nosuch": executable file not found in $PATH');
    socket.write(`HTTP/1.1 101 UPGRADED\r\nX-Silo-System: ${ID}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    socket.end(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(3, '{"ExitCode":3}')]));
  };
  socket.on('error', () => {});
  if (buf.length >= len) return answer();
  socket.on('data', (b: Buffer) => {
    buf = Buffer.concat([buf, b]);
    if (buf.length >= len) answer();
  });
}

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const silo = (args: string[], env: Record<string, string> = {}) => runSilo(sock, args, env);

test('run -d: options after the image belong to the command; combined short flags', async () => {
  seen.length = 0;
  const r = await silo(['run', '-dit', '--name', 'n1', '-m', '64m', '-e', 'A=1', 'busybox', 'ls', '-l', '--name', 'x']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${ID}\n`);
  const create = seen.find((s) => s.url === '/v1/systems')!;
  assert.deepEqual(create.body, {
    Image: 'busybox',
    Name: 'n1',
    Document: {
      Container: { Memory: { SizeInMB: 64 } },
      Process: { CommandArgs: ['ls', '-l', '--name', 'x'], Environment: { A: '1' }, EmulateConsole: true, CreateStdInPipe: true },
    },
  });
  assert.ok(seen.some((s) => s.url === `/v1/systems/${ID}/start`));
});

test('run: one request with the create body, demuxed output, the exit code from the stream\'s last frame', async () => {
  seen.length = 0;
  const r = await silo(['run', '--rm', 'busybox', 'echo']);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.code, 3);
  assert.deepEqual(seen, [{ method: 'POST', url: '/v1/systems/run', body: { Image: 'busybox', Document: { AutoRemove: true, Process: { CommandArgs: ['echo'] } } } }]);
});

test('exit codes: 127 for a missing command, 125 for daemon errors, bad flags and no daemon', async () => {
  const nf = await silo(['run', 'busybox', 'nosuch']);
  assert.equal(nf.code, 127);
  // The fake daemon's attach stream may print before the start fails; the error is the last line.
  assert.match(nf.stderr.trim().split('\n').pop()!, /^Error response from daemon: .*executable file not found/);
  seen.length = 0;
  const img = await silo(['run', 'missing']);
  assert.equal(img.code, 125);
  // docker's flow: not here → pull → the pull's error.
  assert.equal(img.stderr, "Unable to find image 'missing' locally\nError response from daemon: pull access denied for missing, repository does not exist or may require 'silo login'\n");
  assert.deepEqual(seen.map((s) => s.url), ['/v1/systems/run', '/v1/images/pull?ref=missing']);
  const flag = await silo(['run', '--bogus', 'busybox']);
  assert.equal(flag.code, 125);
  assert.equal(flag.stderr.trim().split('\n').length, 1);
  assert.match(flag.stderr, /^silo: unknown option '--bogus'/);
  const vol = await silo(['run', '-v', './rel:/x', 'busybox']);
  assert.equal(vol.code, 125);
  assert.match(vol.stderr, /^silo: invalid volume specification/);
  const down = await silo(['ps'], { SILO_HOST: `unix://${dir}/absent.sock` });
  assert.equal(down.code, 125);
  assert.equal(down.stderr, `silo: Cannot connect to the Silo daemon at unix://${dir}/absent.sock. Is the silo daemon running?\n`);
  const host = await silo(['--host', `unix://${dir}/other.sock`, 'ps']);
  assert.match(host.stderr, /other\.sock/);
});

test('stop: several containers, errors reported and the rest still done', async () => {
  seen.length = 0;
  const r = await silo(['stop', '-t', '2', 'a', 'nope', 'b']);
  assert.equal(r.stdout, 'a\nb\n');
  assert.equal(r.stderr, 'Error response from daemon: no such container: nope\n');
  assert.equal(r.code, 125);
  assert.deepEqual(seen.find((s) => s.url === '/v1/systems/a/shutdown')!.body, { TimeoutSeconds: 2 });
});

test('help and version exit 0', async () => {
  const h = await silo(['run', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /-h, --hostname/);
  const v = await silo(['-v']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^Silo version /);
});
