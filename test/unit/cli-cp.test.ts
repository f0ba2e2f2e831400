// silo cp's pure parts: which side of a copy is the container's (docker's split), and the renaming of a tar's top entry.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { rebase, splitCpArg } from '../../src/cli/commands/cp.js';

test('an absolute path, one without a colon or starting with "." is the host\'s; else container:path', () => {
  assert.deepEqual(splitCpArg('/tmp/a:b'), { path: '/tmp/a:b' });
  assert.deepEqual(splitCpArg('./a:b'), { path: './a:b' });
  assert.deepEqual(splitCpArg('file'), { path: 'file' });
  assert.deepEqual(splitCpArg('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
  assert.deepEqual(splitCpArg('web:'), { container: 'web', path: '' });
});

async function names(entries: { name: string; type?: 'file' | 'directory' | 'link'; linkname?: string }[], newBase: string): Promise<string[]> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) }, e.type === 'directory' || e.type === 'link' ? '' : 'x');
  pack.finalize();
  const out: string[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, s, next) => {
    out.push(h.type === 'link' ? `${h.name} -> ${h.linkname}` : h.name);
    s.resume();
    s.on('end', next);
  });
  const done = new Promise<void>((res, rej) => {
    ex.on('finish', () => res());
    ex.on('error', rej);
  });
  rebase(Readable.from(pack as unknown as AsyncIterable<Buffer>), newBase).pipe(ex);
  await done;
  return out;
}

test('rebase renames the top entry and what is under it, hard link targets too, and nothing else', async () => {
  assert.deepEqual(await names([{ name: 'etc', type: 'directory' }, { name: 'etc/passwd' }, { name: 'etc/pw', type: 'link', linkname: 'etc/passwd' }, { name: 'etcetera' }], 'conf'), [
    'conf', 'conf/passwd', 'conf/pw -> conf/passwd', 'etcetera',
  ]);
  // A directory's contents (DIR/.) come as "." and "./…".
  assert.deepEqual(await names([{ name: '.', type: 'directory' }, { name: './a' }, { name: './sub/b' }], 'new'), ['new', 'new/a', 'new/sub/b']);
  assert.deepEqual(await names([{ name: 'f' }], 'g'), ['g']);
});
