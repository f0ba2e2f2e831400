// The isolation backends are seams: no backend imports another's files, and neither the neutral compute code nor
// any other service imports a backend. Only the daemon's wiring opens them. Read from the sources, so a new import
// across the seam fails here rather than in a review.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const src = join(root, 'src');
const BACKENDS = ['compute/process', 'compute/vm'];
/** Where backends are opened and put in the compute service's map. */
const WIRING = new Set(['host/daemon.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const backendOf = (rel: string) => BACKENDS.find((b) => rel === b || rel.startsWith(`${b}/`));

/** Every relative import (static or dynamic) of a file, as a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(relative(src, resolve(dirname(file), m[1])));
  }
  return out;
}

test('no backend imports another backend, and nothing but the wiring imports a backend', () => {
  const files = sources(src);
  assert.ok(files.length > 50, `sources found under ${src}`);
  const crossings: string[] = [];
  for (const f of files) {
    const rel = relative(src, f);
    const mine = backendOf(rel);
    for (const target of importsOf(f)) {
      const theirs = backendOf(target);
      if (!theirs || theirs === mine) continue;
      if (!mine && WIRING.has(rel)) continue;
      crossings.push(`${rel} imports ${target}`);
    }
  }
  assert.deepEqual(crossings, []);
});
