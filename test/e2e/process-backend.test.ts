// End-to-end tests of the process backend with the real runc and conmon. Everything lives under names carrying
// silo-test-<rand>; each test deletes its container and checks that nothing is left behind.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, copyFile, symlink, writeFile, readdir, rm, access, rmdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openProcessIsolation } from '../../src/compute/process/index.js';
import type { Attachment, InitOptions, IsolationBackend, LogEntry, ProcessParams } from '../../src/compute/process/types.js';

const rand = randomBytes(4).toString('hex');
const tag = `silo-test-${rand}`;
const runDir = `/run/${tag}`;
let base = '';
let stateDir = '';
let rootfs = '';
let be: IsolationBackend;
let seq = 0;

const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'hostname', 'id', 'dd', 'ps', 'head', 'tr', 'true', 'false', 'env', 'ls', 'seq', 'wc', 'yes'];

async function makeRootfs(dir: string) {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) await mkdir(join(dir, d), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin/busybox'));
  for (const a of APPLETS) await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:nobody\n');
}

const exists = (p: string) => access(p).then(() => true, () => false);

function opts(args: string[], extra: Partial<ProcessParams> = {}, more: Partial<InitOptions> = {}): InitOptions {
  const id = `${tag}-c${++seq}`;
  return {
    id, name: id, rootfs, hostname: 'box',
    process: { args, env: [], cwd: '/', user: 'root', tty: false, stdin: false, ...extra },
    mounts: [], resources: {}, ...more,
  };
}

function collect(a: Attachment) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  a.onOutput((s, d) => (s === 1 ? out : err).push(d));
  const closed = new Promise<void>((r) => a.onClose(r));
  return { closed, out: () => Buffer.concat(out).toString(), err: () => Buffer.concat(err).toString() };
}

function conmonsFor(id: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes('conmon') && l.includes(id) && !/ Z/.test(l));
}

async function assertClean(id: string) {
  assert.equal(await exists(join(runDir, 'runc', id)), false, 'runc state left');
  assert.equal(await exists(join(runDir, 'b', id)), false, 'bundle left');
  assert.equal(await exists(join(stateDir, id)), false, 'state left');
  assert.deepEqual(conmonsFor(id), [], 'conmon left');
  for (const c of await readdir('/sys/fs/cgroup')) {
    assert.equal(await exists(join('/sys/fs/cgroup', c, tag, id)), false, `cgroup left in ${c}`);
  }
  assert.deepEqual(await readdir(join(runDir, 'x')), [], 'exec dirs left');
}

/** Create, run the test body, always delete and check cleanliness. */
async function withContainer(o: InitOptions, body: (id: string) => Promise<void>) {
  try {
    await be.create(o);
    await body(o.id);
  } finally {
    await be.delete(o.id, { force: true });
    await assertClean(o.id);
  }
}

describe('process backend (runc + conmon)', { timeout: 180000 }, () => {
  before(async () => {
    base = await mkdtemp(`/var/lib/${tag}-`);
    stateDir = join(base, 'state');
    rootfs = join(base, 'rootfs');
    await makeRootfs(rootfs);
    be = await openProcessIsolation({ stateDir, runDir, cgroupParent: tag });
  });

  after(async () => {
    for (const id of await be.list()) await be.delete(id, { force: true }).catch(() => {});
    // runc leaves the (empty) parent cgroup it created; remove only ours.
    for (const c of await readdir('/sys/fs/cgroup')) await rmdir(join('/sys/fs/cgroup', c, tag)).catch(() => {});
    await rm(base, { recursive: true, force: true });
    await rm(runDir, { recursive: true, force: true });
    for (const c of await readdir('/sys/fs/cgroup')) assert.equal(await exists(join('/sys/fs/cgroup', c, tag)), false, `parent cgroup left in ${c}`);
  });

  test('echo through attach, attached before start; exit code and logs', async () => {
    await withContainer(opts(['sh', '-c', 'echo hello; echo oops >&2; exit 3']), async (id) => {
      assert.equal((await be.state(id)).status, 'created');
      const a = collect(await be.attach(id));
      await be.start(id);
      const st = await be.waitExit(id);
      await a.closed;
      assert.equal(st.exitCode, 3);
      assert.equal(a.out(), 'hello\n');
      assert.equal(a.err(), 'oops\n');
      assert.equal((await be.state(id)).status, 'stopped');
      assert.equal((await be.exitStatus(id))?.exitCode, 3);
      const logs: LogEntry[] = [];
      await be.readLogs(id, { follow: false }, (e) => logs.push(e), new AbortController().signal);
      assert.deepEqual(logs.map((e) => [e.stream, e.data.toString()]), [['stdout', 'hello\n'], ['stderr', 'oops\n']]);
      assert.match(logs[0].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      const tail: LogEntry[] = [];
      await be.readLogs(id, { follow: false, tail: 1 }, (e) => tail.push(e), new AbortController().signal);
      assert.deepEqual(tail.map((e) => e.data.toString()), ['oops\n']);
      const since: LogEntry[] = [];
      await be.readLogs(id, { follow: false, since: logs[1].time }, (e) => since.push(e), new AbortController().signal);
      assert.equal(since.length, 1);
    });
  });
});
