// Images through the CLI: import (with --change), tag, rmi; hostile archives refused with one line and nothing left.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { TestDaemon } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'silo-test-img-'));
  await d.start();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(await d.teardown(), []);
});

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device'; body?: string; linkname?: string; mode?: number };

function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const h = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), devmajor: 1, devminor: 3 };
    if (h.type === 'file') pack.entry(h, e.body ?? '');
    else pack.entry(h);
  }
  pack.finalize();
  return new Promise((res) => {
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', () => res(Buffer.concat(chunks)));
  });
}

test('import a rootfs tar (gzip too) with --change, then run it', async () => {
  const t = await makeTar([
    { name: 'app/', type: 'directory' },
    { name: 'app/hello.sh', body: 'echo "hello from $GREETING"\n', mode: 0o755 },
  ]);
  await writeFile(join(dir, 'app.tar.gz'), gzipSync(t));
  const r = await d.silo(['import', '--change', 'ENV GREETING=import', '--change', 'WORKDIR /app', join(dir, 'app.tar.gz'), 'app:v1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  const insp = JSON.parse((await d.silo(['inspect', 'app:v1'])).stdout)[0];
  assert.equal(insp.config.WorkingDir, '/app');
  assert.ok(insp.config.Env.includes('GREETING=import'));
  assert.equal((await d.silo(['tag', 'app:v1', 'app:v2'])).code, 0);
  assert.match((await d.silo(['images'])).stdout, /app\s+v2/);
  assert.equal((await d.silo(['rmi', 'app:v1', 'app:v2'])).code, 0);
  assert.doesNotMatch((await d.silo(['images'])).stdout, /app/);
});

test('hostile archives are refused with one line, exit 125, and nothing written', async () => {
  const cases: [string, Entry[]][] = [
    ['traversal', [{ name: '../../escape.txt', body: 'x' }]],
    ['symlink then write through it', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/silo-pwned', body: 'x' }]],
    ['hardlink out', [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }]],
    ['device node', [{ name: 'mem', type: 'character-device' }]],
  ];
  const layersBefore = (await d.silo(['images', '-q'])).stdout;
  for (const [what, entries] of cases) {
    await writeFile(join(dir, 'bad.tar'), await makeTar(entries));
    const r = await d.silo(['import', join(dir, 'bad.tar'), `bad:${what.replace(/\W+/g, '-')}`]);
    assert.equal(r.code, 125, `${what}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal((await d.silo(['images', '-q'])).stdout, layersBefore);
  await assert.rejects(readdir('/etc/silo-pwned'));
  assert.deepEqual(await readdir(join(d.stateDir, 'storage/ingest')), []);
});

test('a layer path too long for the kernel is the client\'s error: 400 through both doors, no host path in the message', async () => {
  // 3000 directory levels: the name fits a tar (pax header) but not a path on the host (ENAMETOOLONG).
  const deep = Array.from({ length: 3000 }, () => 'd').join('/');
  const body = await makeTar([{ name: `${deep}/f`, body: 'x' }]);
  const before = (await d.silo(['images', '-q'])).stdout;
  const native = await request(d.socket, 'POST', '/v1/images/import?name=deep:v1', { body, headers: { 'Content-Type': 'application/x-tar' } });
  const docker = await request(d.socket.replace(/silo\.sock$/, 'docker.sock'), 'POST', '/images/create?fromSrc=-&repo=deep&tag=v2', {
    body,
    headers: { 'Content-Type': 'application/x-tar' },
  });
  assert.equal(native.status, 400, native.body.toString().slice(0, 300));
  assert.equal(native.json.code, 'SILO_INVALID_ARGUMENT');
  // The Docker door streams an import's progress (as dockerd does), so its error is the stream's errorDetail line.
  assert.equal(docker.status, 200);
  const lines = docker.body.toString().split(/\r?\n/).filter(Boolean).map((l) => JSON.parse(l));
  const failed = lines.find((l) => l.errorDetail);
  assert.ok(failed, docker.body.toString().slice(0, 300));
  for (const [door, m] of [['native', native.json.message], ['docker', failed.errorDetail.message]] as [string, string][]) {
    assert.match(m, /too long/, door);
    assert.doesNotMatch(m, /\n/, door);
    for (const hostPath of [d.stateDir, d.runDir]) assert.ok(!m.includes(hostPath), `${door}: ${m.slice(0, 300)}`);
  }
  assert.equal((await d.silo(['images', '-q'])).stdout, before);
  assert.deepEqual(await readdir(join(d.stateDir, 'storage/ingest')), []);
});
