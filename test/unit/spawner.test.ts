// Host tools through silo-spawner (src/common/spawner.c) behave as when the daemon forks them itself: the same
// output, exit codes, errors, stdin, cwd, environment and timeout, many at once; the spawner keeps no process alive.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
let binary = join(root, 'build/spawner/silo-spawner');
// A binary older than its source may speak an older protocol: the test builds its own then.
if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(join(root, 'src/common/spawner/spawner.c')).mtimeMs) {
  binary = join(mkdtempSync(join(tmpdir(), 'silo-spawner-')), 'silo-spawner');
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
  const dir = mkdtempSync(join(tmpdir(), 'silo-spawner-'));
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
