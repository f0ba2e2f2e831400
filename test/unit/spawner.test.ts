// Host tools through silo-spawner (src/common/spawner.c) behave as when the daemon forks them itself: the same
// output, exit codes, errors, stdin, cwd, environment and timeout, many at once; the spawner keeps no process alive.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
let binary = join(root, 'build/spawner/silo-spawner');
// A binary older than its source may speak an older protocol: the test builds its own then.
if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(join(root, 'src/common/spawner/spawner.c')).mtimeMs) {
  const own = mkdtempSync(join(tmpdir(), 'silo-test-spawner-'));
  after(() => rmSync(own, { recursive: true, force: true }));
  binary = join(own, 'silo-spawner');
  execFileSync('cc', ['-O2', '-o', binary, join(root, 'src/common/spawner/spawner.c')]);
}

/** The same script under both ways of running tools; each prints its results as JSON. */
const script = `
const { run } = await import(${JSON.stringify(join(root, 'dist/src/common/exec.js'))});
const { spawner } = await import(${JSON.stringify(join(root, 'dist/src/common/spawner.js'))});
const err = (p) => p.then(() => 'resolved', (e) => e.message);
const out = {
  via: spawner() ? 'spawner' : 'fork',
  echo: await run('echo', ['a', 'b']),
  stdin: (await run('cat', [], { input: 'x'.repeat(300000) })).stdout.length,
  allowFail: await run('sh', ['-c', 'echo e >&2; exit 3'], { allowFail: true }),
  fail: await err(run('sh', ['-c', 'echo first >&2; echo last >&2; exit 3'])),
  missing: await err(run('no-such-tool-here', [])),
  cwd: (await run('pwd', [], { cwd: '/tmp' })).stdout,
  env: (await run('env', [], { env: { ONLY: 'this' } })).stdout,
  timeout: await run('sleep', ['5'], { timeoutMs: 100, allowFail: true }),
  many: (await Promise.all(Array.from({ length: 40 }, (_, i) => run('echo', [String(i)])))).map((r) => r.stdout.trim()).join(','),
};
process.stdout.write(JSON.stringify(out));
`;

function runScript(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('the spawner runs tools exactly as a fork of the daemon does, and lets the process exit', () => {
  const viaSpawner = runScript({ SILO_SPAWNER: binary });
  const viaFork = runScript({ SILO_SPAWNER: 'off' });
  assert.equal(viaSpawner.via, 'spawner');
  assert.equal(viaFork.via, 'fork');
  assert.deepEqual({ ...viaSpawner, via: '' }, { ...viaFork, via: '' });
  assert.deepEqual(viaSpawner.echo, { stdout: 'a b\n', stderr: '', code: 0 });
  assert.equal(viaSpawner.stdin, 300000);
  assert.equal(viaSpawner.fail, 'sh -c: last');
  assert.match(String(viaSpawner.missing), /^no-such-tool-here: spawn no-such-tool-here ENOENT$/);
  assert.equal(viaSpawner.env, 'ONLY=this\n');
  assert.deepEqual(viaSpawner.timeout, { stdout: '', stderr: '', code: 128 });
  assert.equal(viaSpawner.many, Array.from({ length: 40 }, (_, i) => i).join(','));
});

test('a monitor started by the spawner answers with its sync pipe\'s first line, in a session of its own', () => {
  // Each monitor double-forks as conmon does: its first process exits at once, a grandchild keeps stderr and fd 3.
  const monitorScript = `
const { spawner } = await import(${JSON.stringify(join(root, 'dist/src/common/spawner.js'))});
const sp = spawner();
const env = { PATH: '/usr/bin:/bin' };
const mon = (sh) => { const t0 = Date.now(); return sp.run({ path: '/bin/sh', argv0: 'sh', args: ['-c', sh], env, monitor: true }).then((s) => ({ ms: Date.now() - t0, code: s.code, stdout: s.stdout.toString(), stderr: s.stderr.toString(), sync: s.sync.toString() })); };
const out = {
  line: await mon('(sleep 0.2; ps -o sid= -p $$ >&3; echo "{\\\\"data\\\\": 42}" >&3; echo more >&3; sleep 3) & echo x; exit 0'),
  failed: await mon('echo boom >&2; exit 1'),
  closed: await mon('(exec 3>&-; sleep 4) & exit 0'),
  sid: (await import('node:fs')).readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[3],
};
process.stdout.write(JSON.stringify(out));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', monitorScript], { env: { ...process.env, SILO_SPAWNER: binary }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, { ms: number; code: number; stdout: string; stderr: string; sync: string }>;
  // Answered at the first line although the grandchild still runs; stdout was /dev/null; the line is its session's id.
  const [sid, rest] = [out.line.sync.split('\n')[0].trim(), out.line.sync.split('\n').slice(1).join('\n')];
  assert.equal(rest, '');
  assert.ok(out.line.ms < 2500, `answered after ${out.line.ms} ms`);
  assert.equal(out.line.stdout, '');
  assert.notEqual(Number(sid), Number(out.sid));
  // A monitor that failed: no line, its stderr and code.
  assert.deepEqual({ ...out.failed, ms: 0 }, { ms: 0, code: 1, stdout: '', stderr: 'boom\n', sync: '' });
  // Its sync pipe closed without a line while stderr stays open: answered 2 s later, not when stderr ends.
  assert.ok(out.closed.ms >= 1900 && out.closed.ms < 3800, `answered after ${out.closed.ms} ms`);
});

test('a spawner whose answer this code cannot read is dropped, the process lives and tools are forked again', () => {
  // A stand-in of another protocol: one 4-byte answer where 28 bytes of header are expected, then it waits.
  const dir = mkdtempSync(join(tmpdir(), 'silo-test-spawner-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const other = join(dir, 'other-spawner');
  writeFileSync(other, "#!/bin/sh\nprintf '\\004\\000\\000\\000abcd'\nexec cat >/dev/null\n", { mode: 0o755 });
  const s = `
const { run } = await import(${JSON.stringify(join(root, 'dist/src/common/exec.js'))});
const first = await run('echo', ['x']).then(() => 'resolved', (e) => e.message);
const again = await run('echo', ['y']);
process.stdout.write(JSON.stringify({ first, again: again.stdout }));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', s], { env: { ...process.env, SILO_SPAWNER: other }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { first: string; again: string };
  assert.match(out.first, /answer could not be read/);
  assert.equal(out.again, 'y\n');
});

test('mount and umount as the spawner\'s builtins leave the kernel as mount(8) and umount(8) do', () => {
  // Each mode in a directory of its own: a tmpfs with options, an ext4 image on a loop device of its own (autoclear:
  // gone with the unmount), an overlay whose lower layer is named relative to cwd, and the failures' codes.
  const script = (dir: string) => `
const { run } = await import(${JSON.stringify(join(root, 'dist/src/common/exec.js'))});
const { loopsFor } = await import(${JSON.stringify(join(root, 'dist/src/common/loop.js'))});
const fs = await import('node:fs');
const dir = ${JSON.stringify(dir)};
const mine = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').filter((l) => l.includes(dir))
  .map((l) => { const [a, b] = l.split(' - '); const f = a.split(' '); const [type, , super_] = b.split(' ');
    return [f[4].slice(dir.length), f[5].split(',').filter((o) => o !== 'relatime').join(','), type, super_.split(',').filter((o) => !/^(seclabel|inode64|uid=0|gid=0)$/.test(o)).join(',').replaceAll(dir, '')].join(' '); });
const code = (p) => p.then((r) => r.code);
for (const d of ['t', 'e', 'l', 'u', 'w', 'o']) fs.mkdirSync(dir + '/' + d, { recursive: true });
fs.writeFileSync(dir + '/l/f', 'lower');
await run('mkfs.ext4', ['-q', '-F', dir + '/img']);
const out = {};
await run('mount', ['-t', 'tmpfs', '-o', 'size=1048576,mode=0700,nosuid', 'tmpfs', dir + '/t']);
await run('mount', ['-t', 'ext4', '-o', 'loop,noinit_itable', dir + '/img', dir + '/e']);
out.loops = (await loopsFor(dir + '/img')).length;
// In the order rootfs-mount.ts gives them (the source before -o): asked of the spawner itself, so that a form the
// builtin does not take (exit 125, which run() would hide by running mount(8)) fails here.
const overlay = ['-t', 'overlay', 'overlay', '-o', 'lowerdir=l,upperdir=' + dir + '/u,workdir=' + dir + '/w', dir + '/o'];
const sp = (await import(${JSON.stringify(join(root, 'dist/src/common/spawner.js'))})).spawner();
out.overlay = sp ? (await sp.run({ path: 'mount', argv0: 'mount', args: overlay, env: {}, cwd: dir, builtin: true })).code : (await run('mount', overlay, { cwd: dir })).code;
out.read = fs.readFileSync(dir + '/o/f', 'utf8');
out.mounts = mine();
out.missing = await code(run('mount', ['-t', 'tmpfs', 'tmpfs', dir + '/none'], { allowFail: true }));
out.error = await run('mount', ['-t', 'tmpfs', 'tmpfs', dir + '/none']).then(() => '', (e) => e.message.replaceAll(dir, ''));
out.bind = await code(run('mount', ['--bind', dir + '/l', dir + '/t'], { allowFail: true }));
out.umount = await code(run('umount', [dir + '/o', dir + '/e']));
out.again = await code(run('umount', [dir + '/e'], { allowFail: true }));
out.lazy = await code(run('umount', ['-l', dir + '/t'])); // the bind on top
out.tmpfs = await code(run('umount', [dir + '/t']));
out.after = mine();
out.loopsAfter = (await loopsFor(dir + '/img')).length;
process.stdout.write(JSON.stringify(out));
`;
  const once = (env: Record<string, string>) => {
    const dir = mkdtempSync('/var/tmp/silo-test-mount-');
    try {
      writeFileSync(join(dir, 'img'), Buffer.alloc(0));
      execFileSync('truncate', ['-s', '16M', join(dir, 'img')]);
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(dir)], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    } finally {
      spawnSync('umount', ['-R', '-l', dir]);
      for (const d of ['o', 'e', 't']) spawnSync('umount', ['-l', join(dir, d)]);
      spawnSync('rm', ['-rf', dir]);
    }
  };
  const builtin = once({ SILO_SPAWNER: binary });
  const tools = once({ SILO_SPAWNER: 'off' });
  // The same but for the words of the error (strerror's, where mount(8) has its own): the builtin did run.
  assert.equal(builtin.error, 'mount -t: mount: /none: No such file or directory');
  assert.match(String(tools.error), /^mount -t: /);
  assert.deepEqual({ ...builtin, error: '' }, { ...tools, error: '' });
  assert.equal(builtin.read, 'lower');
  assert.equal(builtin.loops, 1);
  assert.equal((builtin.mounts as string[]).length, 3);
  assert.ok((builtin.mounts as string[]).some((m) => /^\/t rw,nosuid tmpfs rw,size=1024k,mode=700/.test(m)), String(builtin.mounts));
  assert.deepEqual([builtin.missing, builtin.bind, builtin.umount, builtin.again, builtin.lazy, builtin.tmpfs], [32, 0, 0, 32, 0, 0]);
  assert.deepEqual([builtin.after, builtin.loopsAfter], [[], 0]);
});
