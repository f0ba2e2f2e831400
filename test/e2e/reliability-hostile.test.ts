// Hostile root filesystems (the CVE list in ../shared/reference/anchors.md): images whose rootfs has /dev or /proc as
// a symlink to a host path, /etc/passwd pointing at a shadow-like host file, /dev/null as a regular file, and working
// directories that lead into /proc/self/fd (CVE-2024-21626: with runc < 1.1.12 a leaked fd gives a cwd on the host).
// Each is refused with a clear error or contained: a host sentinel directory stays exactly as it was.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pack } from 'tar-stream';
import { TestDaemon } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
const sentinel = `/var/lib/${d.tag}-sentinel`;

/** Every name and content under the sentinel dir, hashed: any write through an escaping link changes it. */
function sentinelState(): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      h.update(`${dir}/${e.name}:${e.isDirectory()}\n`);
      if (e.isDirectory()) walk(`${dir}/${e.name}`);
      else if (e.isFile()) h.update(readFileSync(`${dir}/${e.name}`));
    }
  };
  walk(sentinel);
  return h.digest('hex');
}

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink'; linkname?: string; body?: Buffer | string; mode?: number };

/** A rootfs with the host's static busybox as /bin/sh, plus the hostile entries. */
async function rootfsTar(extra: Entry[]): Promise<Buffer> {
  const p = pack();
  const add = (e: Entry) => p.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644) }, e.body ?? '');
  add({ name: 'bin', type: 'directory' });
  add({ name: 'bin/busybox', body: readFileSync('/bin/busybox'), mode: 0o755 });
  for (const a of ['sh', 'echo', 'cat', 'ls', 'touch', 'pwd', 'mkdir', 'head', 'stat', 'sleep', 'id', 'wc']) add({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  for (const e of extra) add(e);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function importImage(name: string, extra: Entry[], changes: string[] = []): Promise<{ status: number; message?: string }> {
  const q = [`name=${encodeURIComponent(name)}`, 'change=' + encodeURIComponent('ENV PATH=/bin'), ...changes.map((c) => `change=${encodeURIComponent(c)}`)].join('&');
  const a = await request(d.socket, 'POST', `/v1/images/import?${q}`, { body: await rootfsTar(extra), headers: { 'Content-Type': 'application/x-tar' } });
  return { status: a.status, message: a.json?.message };
}

/** Run a script in the image: refused (exit 125/126/127 with a one-line error) or run; the sentinel is unchanged. */
async function runContained(image: string, script: string, flags: string[] = []): Promise<{ code: number; out: string; err: string }> {
  const before = sentinelState();
  const r = await d.silo(['run', '--rm', ...flags, image, 'sh', '-c', script], { timeoutMs: 30_000 });
  assert.equal(sentinelState(), before, `${image}: the host sentinel changed (${r.stdout} ${r.stderr})`);
  if (r.code >= 125) assert.equal(r.stderr.trim().split('\n').length, 1, `${image}: one clear line: ${r.stderr}`);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

before(async () => {
  mkdirSync(`${sentinel}/dir`, { recursive: true });
  writeFileSync(`${sentinel}/shadow`, 'root:$6$secret$hash:19000:0:99999:7:::\n');
  writeFileSync(`${sentinel}/dir/marker`, 'untouched\n');
  await d.start();
});
after(async () => {
  rmSync(sentinel, { recursive: true, force: true });
  assert.deepEqual(await d.teardown(), []);
});

const WRITE_ALL = 'for p in /dev/pwned /dev/dir/pwned /proc/pwned /etc/pwned /etc/passwd; do echo pwned > $p 2>/dev/null; done; echo done';

// runc 1.1.5 made /dev's symlinks (fd, stdin, ptmx…) inside the host directory a /dev link pointed at: refused now.
for (const [dir, target] of [['dev', () => sentinel], ['dev', () => `../../../..${sentinel}`], ['proc', () => `${sentinel}/dir`], ['sys', () => sentinel]] as const) {
  test(`/${dir} as a symlink to a host path (${target().startsWith('/') ? 'absolute' : 'relative'}) is refused, nothing written`, async () => {
    const image = `hostile-${dir}:${target().startsWith('/') ? 'abs' : 'rel'}`;
    assert.equal((await importImage(image, [{ name: dir, type: 'symlink', linkname: target() }])).status, 201);
    const r = await runContained(image, WRITE_ALL);
    assert.equal(r.code, 125, r.out + r.err);
    assert.match(r.err, new RegExp(`/${dir} is a symlink`));
  });
}

test('/etc/passwd as a symlink to a host file is refused; the host file is never read', async () => {
  const extra: Entry[] = [{ name: 'etc', type: 'directory' }, { name: 'etc/passwd', type: 'symlink', linkname: `${sentinel}/shadow` }];
  assert.equal((await importImage('hostile-passwd:1', extra)).status, 201);
  for (const flags of [[], ['-u', 'root'], ['-u', '0']]) {
    const r = await runContained('hostile-passwd:1', 'cat /etc/passwd; ' + WRITE_ALL, flags);
    assert.equal(r.code, 125, r.out + r.err);
    assert.match(r.err, /passwd.*symlink/);
    assert.doesNotMatch(r.out + r.err, /secret/);
  }
});

test('/etc/hosts and /etc/resolv.conf as symlinks to host files are contained', async () => {
  const extra: Entry[] = [{ name: 'etc', type: 'directory' }, { name: 'etc/hosts', type: 'symlink', linkname: `${sentinel}/dir/marker` }, { name: 'etc/resolv.conf', type: 'symlink', linkname: `../../../..${sentinel}/shadow` }];
  assert.equal((await importImage('hostile-hosts:1', extra)).status, 201);
  const r = await runContained('hostile-hosts:1', 'cat /etc/hosts /etc/resolv.conf; ' + WRITE_ALL);
  assert.doesNotMatch(r.out + r.err, /secret|untouched/, 'the host files were not read');
});

test('/dev/null as a regular file is contained: the container gets the real device', async () => {
  const extra: Entry[] = [{ name: 'dev', type: 'directory' }, { name: 'dev/null', body: 'not a device\n' }, { name: 'proc', type: 'directory' }];
  assert.equal((await importImage('hostile-null:1', extra)).status, 201);
  // Masked paths are covered with runc's own /dev/null (CVE-2025-31133 used a fake one): they read empty.
  const r = await runContained('hostile-null:1', 'stat -c %F /dev/null; echo x > /dev/null; cat /dev/null; wc -c < /proc/timer_list');
  assert.equal(r.out, 'character special file\n0\n', r.err);
});

test('working directories into /proc/self/fd are refused: -w, WORKDIR, and a symlink that leads there', async () => {
  const extra: Entry[] = [{ name: 'proc', type: 'directory' }, { name: 'dev', type: 'directory' }, { name: 'wd', type: 'symlink', linkname: '/proc/self/fd/7' }, { name: 'rel', type: 'symlink', linkname: '../proc/self/task/1/fd/8' }];
  assert.equal((await importImage('hostile-wd:1', extra)).status, 201);
  for (const w of ['/proc/self/fd/5', '/proc/self/fd/3', '/proc/thread-self/fd/8', '/proc/1/task/1/fd/6', '/proc/self/../self/fd/4', '/wd', '/wd/sub', '/rel', '/dev/fd/7']) {
    const r = await runContained('hostile-wd:1', 'pwd; ls', ['-w', w]);
    assert.equal(r.code, 125, `-w ${w} was not refused: ${r.out} ${r.err}`);
  }
  for (const n of [3, 7, 8]) {
    const imp = await importImage(`hostile-wd:${n}`, extra, [`WORKDIR /proc/self/fd/${n}`]);
    if (imp.status !== 201) {
      assert.equal(imp.status, 400, imp.message); // refused at import: fine too
      continue;
    }
    const r = await runContained(`hostile-wd:${n}`, 'pwd; ls');
    assert.equal(r.code, 125, `WORKDIR /proc/self/fd/${n} was not refused: ${r.out} ${r.err}`);
  }
  const viaLink = await importImage('hostile-wd:link', extra, ['WORKDIR /wd']);
  assert.equal(viaLink.status, 201);
  assert.equal((await runContained('hostile-wd:link', 'pwd; ls')).code, 125, 'WORKDIR through a symlink into /proc/self/fd');
  // Exec too, into a running container.
  assert.equal((await d.silo(['run', '-d', '--name', 'wdx', 'hostile-wd:1', 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'])).code, 0);
  for (const w of ['/proc/self/fd/7', '/wd', '/dev/fd/7']) {
    const x = await d.silo(['exec', '-w', w, 'wdx', 'pwd']);
    assert.equal(x.code, 125, `exec -w ${w} was not refused: ${x.stdout} ${x.stderr}`);
  }
  await d.silo(['rm', '-f', 'wdx']);
});
