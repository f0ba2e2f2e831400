// End-to-end tests of the process backend with the real runc and conmon. Everything lives under names carrying
// silo-test-<rand>; each test deletes its container and checks that nothing is left behind.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, copyFile, symlink, writeFile, readdir, rm, access, rmdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openProcessIsolation } from '../../src/compute/process/index.js';
import type { Attachment, InitOptions, IsolationBackend, LogEntry, ProcessParams } from '../../src/compute/backend.js';
import type { RootDescription } from '../../src/storage/types.js';

const rand = randomBytes(4).toString('hex');
const tag = `silo-test-${rand}`;
const runDir = `/run/${tag}`;
let base = '';
let stateDir = '';
let rootfs = '';
let be: IsolationBackend;
let seq = 0;

const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'hostname', 'id', 'dd', 'ps', 'head', 'tr', 'true', 'false', 'env', 'ls', 'seq', 'wc', 'yes', 'stty', 'grep', 'mkdir'];

async function makeRootfs(dir: string) {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) await mkdir(join(dir, d), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin/busybox'));
  for (const a of APPLETS) await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:nobody\n');
}

const exists = (p: string) => access(p).then(() => true, () => false);

/** A root as storage would describe it: the test's rootfs as the one layer, a fresh 32 MB ext4 scratch. */
function rootFor(id: string): RootDescription {
  const path = join(base, `${id}.img`);
  execFileSync('truncate', ['-s', '32M', path]);
  execFileSync('mkfs.ext4', ['-q', '-F', path]);
  return { layers: [{ chainId: 'sha256:test', path: rootfs }], scratch: { path, format: 'ext4', sizeBytes: 32 << 20 }, overlayOptions: ['index=off', 'redirect_dir=off', 'metacopy=off'] };
}

function opts(args: string[], extra: Partial<ProcessParams> = {}, more: Partial<InitOptions> = {}): InitOptions {
  const id = `${tag}-c${++seq}`;
  return {
    id, name: id, root: rootFor(id), hostname: 'box',
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
  await be.unmountRoot(id);
  assert.equal(await exists(join(runDir, 'rootfs', id)), false, 'root mount left');
  assert.equal(await exists(join(runDir, 'scratch', id)), false, 'scratch mount left');
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
    for (const id of await be.list()) {
      await be.delete(id, { force: true }).catch(() => {});
      await be.unmountRoot(id).catch(() => {});
    }
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
  test('tty + stdin: a shell reads commands and exits 4', async () => {
    await withContainer(opts(['sh'], { tty: true, stdin: true, consoleSize: { rows: 30, cols: 100 } }), async (id) => {
      const a = await be.attach(id);
      const c = collect(a);
      await be.start(id);
      await be.resize(id, undefined, 40, 120);
      await new Promise((r) => setTimeout(r, 100));
      a.writeStdin(Buffer.from('stty size; echo "t=$TERM"; echo hi\nexit 4\n'));
      const st = await be.waitExit(id);
      await c.closed;
      assert.equal(st.exitCode, 4);
      assert.match(c.out(), /hi\r?\n/);
      assert.match(c.out(), /t=xterm/);
      assert.match(c.out(), /^40 120\r?$/m);
      assert.equal(c.err(), '');
    });
  });

  test('piped stdin to cat; closing stdin ends it', async () => {
    await withContainer(opts(['cat'], { stdin: true }), async (id) => {
      const a = await be.attach(id);
      const c = collect(a);
      await be.start(id);
      a.writeStdin(Buffer.from('line one\n'));
      a.writeStdin(Buffer.from('line two\n'));
      a.closeStdin();
      const st = await be.waitExit(id);
      await c.closed;
      assert.equal(st.exitCode, 0);
      assert.equal(c.out(), 'line one\nline two\n');
    });
  });

  test('user, env, hostname and hardening are applied', async () => {
    await withContainer(opts(['sh', '-c', 'id; echo "$HOME $HOSTNAME $PATH"; hostname; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status || cat /proc/self/status'], { user: 'nobody' }), async (id) => {
      const c = collect(await be.attach(id));
      await be.start(id);
      assert.equal((await be.waitExit(id)).exitCode, 0);
      await c.closed;
      assert.match(c.out(), /uid=65534\(nobody\) gid=65534\(nogroup\)/);
      assert.match(c.out(), /\/nonexistent box \/usr\/local\/sbin/);
      assert.match(c.out(), /^box$/m);
      assert.match(c.out(), /CapEff:\s+0000000000000000/);
      assert.match(c.out(), /NoNewPrivs:\s+1/);
      assert.match(c.out(), /Seccomp:\s+2/);
    });
  });

  test('seccomp denies namespace creation with EPERM, even where the kernel would allow it', async () => {
    // A user namespace needs no capability, so only the seccomp filter stops unshare(CLONE_NEWUSER).
    await withContainer(opts(['sh', '-c', 'busybox unshare -U true; echo rc=$?'], { user: 'nobody' }), async (id) => {
      const c = collect(await be.attach(id));
      await be.start(id);
      await be.waitExit(id);
      await c.closed;
      assert.match(c.out(), /rc=[1-9]/);
      assert.match(c.err(), /not permitted/i);
    });
  });

  test('exec with exit code, attached output, and exec tty', async () => {
    await withContainer(opts(['sleep', '60']), async (id) => {
      await be.start(id);
      const r = await be.exec(id, { execId: `${id}-e1`, process: { args: ['sh', '-c', 'echo in-exec; echo e >&2; exit 7'], env: [], cwd: '/tmp', user: 'root', tty: false, stdin: false } });
      assert.ok(r.pid > 0);
      const c = collect(r.attachment);
      const st = await r.exit;
      await c.closed;
      assert.equal(st.exitCode, 7);
      assert.equal(c.out(), 'in-exec\n');
      assert.equal(c.err(), 'e\n');

      const t = await be.exec(id, { execId: `${id}-e2`, process: { args: ['sh'], env: [], cwd: '/', user: 'root', tty: true, stdin: true } });
      const ct = collect(t.attachment);
      await be.resize(id, `${id}-e2`, 24, 81);
      await new Promise((r) => setTimeout(r, 100));
      t.attachment.writeStdin(Buffer.from('stty size; echo tty-$((1+2))\nexit 5\n'));
      assert.equal((await t.exit).exitCode, 5);
      await ct.closed;
      assert.match(ct.out(), /tty-3/);
      assert.match(ct.out(), /^24 81\r?$/m);

      await assert.rejects(
        be.exec(id, { execId: `${id}-e3`, process: { args: ['/nope'], env: [], cwd: '/', user: 'root', tty: false, stdin: false } }),
        (e: Error) => /nope/.test(e.message) && !e.message.includes('\n'),
      );
    });
  });

  test('kill with SIGTERM, pause/resume, update memory, statistics, process list', async () => {
    await withContainer(opts(['sh', '-c', 'trap "echo got-term; exit 143" TERM; sleep 1000 & wait'], {}, { resources: { memoryBytes: 64 << 20, pidsLimit: 50, cpus: 0.5, cpuWeight: 500 } }), async (id) => {
      await be.start(id);
      assert.equal((await be.state(id)).status, 'running');
      const s = await be.statistics(id);
      assert.ok(s.memory.usageBytes > 0, 'memory usage');
      assert.equal(s.memory.limitBytes, 64 << 20);
      assert.ok(s.pids.current >= 1, 'pids');
      assert.equal(s.pids.limit, 50);
      // The shell forks its sleep after it starts: on a loaded host the first listing may come before that.
      let ps = await be.processList(id);
      for (let i = 0; i < 50 && !ps.some((p) => p.command.startsWith('sleep 1000')); i++) {
        await new Promise((r) => setTimeout(r, 100));
        ps = await be.processList(id);
      }
      assert.ok(ps.some((p) => p.command.startsWith('sleep 1000')), JSON.stringify(ps));
      assert.ok(ps.every((p) => p.user === 'root'));
      await be.update(id, { memoryBytes: 48 << 20, cpus: 1 });
      assert.equal((await be.statistics(id)).memory.limitBytes, 48 << 20);
      await be.pause(id);
      assert.equal((await be.state(id)).status, 'paused');
      await assert.rejects(be.delete(id), /paused/);
      await be.resume(id);
      assert.equal((await be.state(id)).status, 'running');
      await be.kill(id, 'SIGTERM');
      const st = await be.waitExit(id);
      assert.equal(st.exitCode, 143);
      assert.notEqual(st.oomKilled, true);
    });
  });

  test('memory limit enforced: exit 137 and oomKilled', async () => {
    await withContainer(opts(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], {}, { resources: { memoryBytes: 32 << 20 } }), async (id) => {
      await be.start(id);
      const st = await be.waitExit(id);
      assert.equal(st.exitCode, 137);
      assert.equal(st.oomKilled, true);
    });
  });

  test('pids limit: forks fail past the limit', async () => {
    const script = 'n=0; for i in $(seq 1 40); do sleep 30 2>/dev/null & if [ $? -eq 0 ]; then n=$((n+1)); fi; done; sleep 0.5; echo started; ps -o pid | wc -l';
    await withContainer(opts(['sh', '-c', script], {}, { resources: { pidsLimit: 20 } }), async (id) => {
      const c = collect(await be.attach(id));
      await be.start(id);
      await be.waitExit(id);
      await c.closed;
      assert.match(c.err(), /fork|Resource temporarily unavailable|can't/i);
      const s = c.out().trim().split('\n');
      assert.ok(Number(s[s.length - 1]) <= 21, c.out());
    });
  });

  test('containers outlive the backend: a new instance waits, kills and reads logs', async () => {
    await withContainer(opts(['sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done']), async (id) => {
      await be.start(id);
      await new Promise((r) => setTimeout(r, 400));
      const be2 = await openProcessIsolation({ stateDir, runDir, cgroupParent: tag });
      assert.ok((await be2.list()).includes(id));
      assert.equal((await be2.state(id)).status, 'running');
      const follow: LogEntry[] = [];
      const ac = new AbortController();
      const following = be2.readLogs(id, { follow: true, tail: 2 }, (e) => follow.push(e), ac.signal);
      const waiting = be2.waitExit(id);
      await new Promise((r) => setTimeout(r, 400));
      await be2.kill(id, 'KILL', true);
      const st = await waiting;
      assert.equal(st.exitCode, 137);
      await following; // ends by itself once the container stopped and the log is drained
      assert.ok(follow.length >= 4, `followed ${follow.length}`);
      assert.match(follow[0].data.toString(), /^tick \d+\n$/);
      const nums = follow.map((e) => Number(e.data.toString().split(' ')[1]));
      assert.deepEqual(nums, nums.map((_, i) => nums[0] + i), 'no gaps or repeats');
    });
  });

  test('create failure is a clear one-line error and leaves nothing', async () => {
    const o = opts(['/does-not-exist']);
    await assert.rejects(be.create(o), (e: Error) => /does-not-exist.*no such file/.test(e.message) && !e.message.includes('\n'));
    await assertClean(o.id);
    await assert.rejects(be.create(opts(['true'], { cwd: '/proc/self/fd/7' })), /not allowed/);
    await assert.rejects(be.create(opts(['true'], { user: 'ghost' })), /unable to find user ghost/);
  });
  test('a container created by a daemon process that has exited keeps running and is adopted', async () => {
    const o = opts(['sh', '-c', 'echo started; sleep 30']);
    const mod = new URL('../../src/compute/process/index.js', import.meta.url).href;
    const script = `const { openProcessIsolation } = await import(${JSON.stringify(mod)});
      const b = await openProcessIsolation(${JSON.stringify({ stateDir, runDir, cgroupParent: tag })});
      await b.create(${JSON.stringify(o)}); await b.start(${JSON.stringify(o.id)});`;
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe', timeout: 30000 });
      assert.equal((await be.state(o.id)).status, 'running');
      assert.equal(conmonsFor(o.id).length, 1);
      await be.kill(o.id, 'KILL');
      assert.equal((await be.waitExit(o.id)).exitCode, 137);
      const logs: LogEntry[] = [];
      await be.readLogs(o.id, { follow: true }, (e) => logs.push(e), new AbortController().signal);
      assert.deepEqual(logs.map((e) => e.data.toString()), ['started\n']);
    } finally {
      await be.delete(o.id, { force: true });
      await assertClean(o.id);
    }
  });
});
