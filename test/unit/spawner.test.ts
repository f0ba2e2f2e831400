// Host tools through silo-spawner (src/common/spawner.c) behave as when the daemon forks them itself: the same
// output, exit codes, errors, stdin, cwd, environment and timeout, many at once; the spawner keeps no process alive.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
let binary = join(root, 'build/spawner/silo-spawner');
if (!existsSync(binary)) {
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
