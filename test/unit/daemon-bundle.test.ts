// The daemon's bundle (scripts/bundle.mjs, dist/daemon/): every path a bundled module resolves from its own
// import.meta.url (the spawner's and helpers' binaries under build/, the registry's worker file, the CRI's .proto) must
// name a compiled file that exists, and typebox must be inside the bundle, not loaded as ~220 modules beside it.
// Built by setup after tsc; a tsc alone leaves it stale (bin/silo then runs the compiled modules), so it is rebuilt here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const out = join(root, 'dist/daemon');

test('the daemon bundle resolves each module\'s own paths from its compiled file and holds typebox', () => {
  execFileSync(process.execPath, ['scripts/bundle.mjs'], { cwd: root, stdio: 'pipe' });
  const files = readdirSync(out).filter((f) => f.endsWith('.mjs'));
  assert.ok(files.includes('daemon.mjs'), 'the entry the CLI bundle imports');
  const cli = readFileSync(join(root, 'dist/cli/main.mjs'), 'utf8') + readdirSync(join(root, 'dist/cli')).map((f) => (f.endsWith('.mjs') ? readFileSync(join(root, 'dist/cli', f), 'utf8') : '')).join('');
  assert.match(cli, /\.\.\/daemon\/daemon\.mjs/, '`silo daemon` imports the bundle');
  const own: string[] = [];
  for (const f of files) {
    const s = readFileSync(join(out, f), 'utf8');
    assert.doesNotMatch(s, /from ["']@sinclair\/typebox/, `${f} imports typebox from node_modules`);
    for (const m of s.matchAll(/new URL\("([^"]+)", import\.meta\.url\)/g)) own.push(m[1]);
  }
  // spawner.js, inroot.js, vm/index.js, fetchers.js, cri/server.js, lazy-compilers.js at least.
  assert.ok(own.length >= 5, `module URLs rewritten: ${own.join(', ')}`);
  for (const rel of own) {
    assert.match(rel, /^\.\.\/src\/.*\.js$/, rel);
    assert.ok(existsSync(join(out, rel)), `${rel} (from dist/daemon/) exists`);
  }
});
