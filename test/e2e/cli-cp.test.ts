// `silo cp` and `silo export` on the native API, with docker cp's rules for where a copy lands (a directory into an
// existing directory, "/." for a directory's contents, a rename to a path that does not exist yet, a file onto a
// file), a tar on stdin and stdout, owners kept by -a only, -L, and one-line errors; and the docker CLI's own "/."
// copies against Silo, which name the top entry "." as dockerd does.

import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync, chownSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture } from './docker-fixture.js';
import { runProcess, SILO_BIN } from './harness.js';

const f = new DockerFixture();
const d = f.d;
let dir: string;

before(async () => {
  await f.start();
  dir = mkdtempSync(join(tmpdir(), 'silo-test-cp-'));
  const r = await d.silo(['run', '-d', '--name', 'cp1', 'busybox', 'sh', '-c', 'mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && ln -s /etc/hostname /data/link && ln -s a /data/rel && sleep 600']);
  assert.equal(r.code, 0, r.stderr);
  for (let i = 0; i < 50 && (await d.silo(['exec', 'cp1', 'test', '-e', '/data/rel'])).code !== 0; i++) await new Promise((res) => setTimeout(res, 100));
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(await f.teardown(), []);
});

const sh = (script: string) => runProcess('sh', ['-c', script], { env: { SILO_HOST: `unix://${d.socket}`, SILO: `${process.execPath} ${SILO_BIN}`, PATH: process.env.PATH } });
const list = (p: string) => readdirSync(p).sort();

test('out of a container: into a directory, "/." as contents, renamed to a new path, onto a file, -L, to stdout', async () => {
  const into = join(dir, 'into');
  mkdirSync(into);
  assert.equal((await d.silo(['cp', 'cp1:/data', into])).code, 0);
  assert.deepEqual(list(join(into, 'data')), ['a', 'link', 'rel', 'sub']);
  assert.equal(readFileSync(join(into, 'data/sub/b'), 'utf8'), 'two\n');
  // Links are copied as links, pointing where they pointed.
  assert.equal(readlinkSync(join(into, 'data/link')), '/etc/hostname');

  const contents = join(dir, 'into2');
  mkdirSync(contents);
  assert.equal((await d.silo(['cp', 'cp1:/data/.', contents])).code, 0);
  assert.deepEqual(list(contents), ['a', 'link', 'rel', 'sub']);

  const renamed = join(dir, 'renamed');
  assert.equal((await d.silo(['cp', 'cp1:/data/.', renamed])).code, 0);
  assert.deepEqual(list(renamed), ['a', 'link', 'rel', 'sub']);
  const renamedDir = join(dir, 'renamed-dir');
  assert.equal((await d.silo(['cp', 'cp1:/data/sub', renamedDir])).code, 0);
  assert.deepEqual(list(renamedDir), ['b']);

  const file = join(dir, 'file');
  writeFileSync(file, 'old contents that are longer\n');
  assert.equal((await d.silo(['cp', 'cp1:/data/a', file])).code, 0);
  assert.equal(readFileSync(file, 'utf8'), 'one\n');
  assert.equal((await d.silo(['cp', 'cp1:/data/sub/b', join(dir, 'b-new')])).code, 0);
  assert.equal(readFileSync(join(dir, 'b-new'), 'utf8'), 'two\n');

  // -L copies what the link points at, under the link's name.
  const followed = join(dir, 'followed');
  mkdirSync(followed);
  assert.equal((await d.silo(['cp', '-L', 'cp1:/data/rel', followed])).code, 0);
  assert.ok(lstatSync(join(followed, 'rel')).isFile());
  assert.equal(readFileSync(join(followed, 'rel'), 'utf8'), 'one\n');

  const tar = await sh('$SILO cp cp1:/data/sub - | tar -tf -');
  assert.equal(tar.code, 0, tar.stderr);
  assert.deepEqual(tar.stdout.split('\n').filter(Boolean).map((l) => l.replace(/\/$/, '')).sort(), ['sub', 'sub/b']);
});

test('into a container: into a directory, "/." as contents, renamed, owners kept by -a only, a tar from stdin', async () => {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'deep'), { recursive: true });
  writeFileSync(join(src, 'f'), 'from the host\n');
  writeFileSync(join(src, 'deep/g'), 'deeper\n');
  symlinkSync('f', join(src, 'lnk'));
  chownSync(join(src, 'f'), 1234, 5678);

  assert.equal((await d.silo(['cp', src, 'cp1:/tmp'])).code, 0);
  assert.equal((await d.silo(['exec', 'cp1', 'cat', '/tmp/src/deep/g'])).stdout, 'deeper\n');
  assert.equal((await d.silo(['exec', 'cp1', 'readlink', '/tmp/src/lnk'])).stdout, 'f\n');
  assert.equal((await d.silo(['exec', 'cp1', 'stat', '-c', '%u:%g', '/tmp/src/f'])).stdout, '0:0\n', 'owned by root without -a');

  assert.equal((await d.silo(['cp', '-a', `${src}/.`, 'cp1:/tmp/contents'])).code, 0);
  assert.equal((await d.silo(['exec', 'cp1', 'ls', '/tmp/contents'])).stdout, 'deep\nf\nlnk\n');
  assert.equal((await d.silo(['exec', 'cp1', 'stat', '-c', '%u:%g', '/tmp/contents/f'])).stdout, '1234:5678\n', '-a keeps the owner');

  assert.equal((await d.silo(['cp', join(src, 'f'), 'cp1:/tmp/renamed-f'])).code, 0);
  assert.equal((await d.silo(['exec', 'cp1', 'cat', '/tmp/renamed-f'])).stdout, 'from the host\n');
  // Onto an existing file: replaced.
  assert.equal((await d.silo(['cp', join(src, 'deep/g'), 'cp1:/tmp/renamed-f'])).code, 0);
  assert.equal((await d.silo(['exec', 'cp1', 'cat', '/tmp/renamed-f'])).stdout, 'deeper\n');

  const missing = await sh(`tar -C ${src} -cf - deep | $SILO cp - cp1:/tmp/piped-missing`);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /^[^\n]*must be a directory\n$/);
  assert.equal((await d.silo(['exec', 'cp1', 'mkdir', '/tmp/piped'])).code, 0);
  const ok = await sh(`tar -C ${src} -cf - deep | $SILO cp - cp1:/tmp/piped`);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((await d.silo(['exec', 'cp1', 'cat', '/tmp/piped/deep/g'])).stdout, 'deeper\n');
});

test('refused with one line and exit 125, nothing written', async () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const cases: [string[], RegExp][] = [
    [['cp', 'cp1:/data', file], /cannot copy a directory to a file/],
    [['cp', 'cp1:/data/a', join(dir, 'no-such-dir') + '/'], /no such directory/],
    [['cp', 'cp1:/nowhere', join(dir, 'x')], /Could not find the file \/nowhere/],
    [['cp', 'silo-test-nosuch:/etc', join(dir, 'x')], /no such container/],
    [['cp', join(dir, 'missing'), 'cp1:/tmp'], /could not find the file/],
    [['cp', join(dir, 'src'), 'cp1:/etc/passwd'], /cannot copy a directory to a file/],
    [['cp', join(dir, 'a-file'), 'cp1:/no/such/dir/'], /no such directory/],
    [['cp', 'cp1:/etc', 'cp1:/tmp'], /copying between containers is not supported/],
    [['cp', join(dir, 'a-file'), join(dir, 'b-file')], /must specify at least one container source/],
    [['cp', 'cp1:/data/a', join(dir, 'no-parent', 'x')], /destination directory .* does not exist/],
  ];
  for (const [args, re] of cases) {
    const r = await d.silo(args);
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^[^\\n]*${re.source}[^\\n]*\\n$`), args.join(' '));
  }
  assert.equal(readFileSync(file, 'utf8'), 'x');
  assert.equal(statSync(dir).isDirectory(), true);
  assert.ok(!['x', 'b-file', 'no-such-dir', 'no-parent'].some((n) => list(dir).includes(n)));
});

test('silo export writes the container filesystem as a tar; the docker CLI copies "/." as dockerd does', async () => {
  const out = join(dir, 'export.tar');
  const r = await d.silo(['export', '-o', out, 'cp1']);
  assert.equal(r.code, 0, r.stderr);
  const names = (await runProcess('tar', ['-tf', out])).stdout.split('\n');
  assert.ok(names.some((n) => /^(\.\/)?data\/sub\/b$/.test(n)) && names.some((n) => /^(\.\/)?bin\/busybox$/.test(n)), names.slice(0, 20).join(' '));

  const fresh = join(dir, 'docker-new');
  assert.equal((await f.run(['cp', 'cp1:/data/.', fresh])).code, 0);
  assert.deepEqual(list(fresh), ['a', 'link', 'rel', 'sub']);
  const existing = join(dir, 'docker-existing');
  mkdirSync(existing);
  assert.equal((await f.run(['cp', 'cp1:/data/.', existing])).code, 0);
  assert.deepEqual(list(existing), ['a', 'link', 'rel', 'sub']);
});
