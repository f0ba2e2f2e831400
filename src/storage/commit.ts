// Turn an overlay upper dir into an OCI layer tar: files, dirs, symlinks as they are; hardlinks within the
// upper as tar hardlinks; overlay whiteouts (char 0:0) as ".wh.NAME"; opaque dirs as ".wh..wh..opq".

import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { run } from '../common/exec.js';
import { unescapeOctal } from '../common/mountinfo.js';
import { isOverlayWhiteout, OPAQUE_XATTR, opaqueEntryName, whiteoutEntryName } from './whiteout.js';

/** Relative paths of the opaque directories under `dir`, read in one getfattr run. */
export async function opaqueDirs(dir: string): Promise<Set<string>> {
  const r = await run('getfattr', ['-R', '-h', '--absolute-names', '-n', OPAQUE_XATTR, '-e', 'text', dir], { allowFail: true });
  return parseGetfattr(r.stdout, dir);
}

/** getfattr prints "# file: PATH" then "name=\"value\"" lines; paths are octal-escaped. */
export function parseGetfattr(out: string, base: string): Set<string> {
  const res = new Set<string>();
  let file: string | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeOctal(line.slice(8));
    else if (file !== undefined && line === `${OPAQUE_XATTR}="y"`) {
      const rel = file === base ? '' : file.startsWith(base + '/') ? file.slice(base.length + 1) : undefined;
      if (rel !== undefined) res.add(rel);
    }
  }
  return res;
}

function addEntry(pack: tar.Pack, h: Parameters<tar.Pack['entry']>[0], body?: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!body) {
      // An empty buffer, not no buffer: a size-0 'file' entry without one waits forever for its body.
      pack.entry(h, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      return;
    }
    const w = pack.entry(h, (err) => (err ? reject(err) : resolve()));
    body.on('error', (e) => {
      w.destroy(e as Error);
      reject(e);
    });
    body.pipe(w);
  });
}

async function walk(pack: tar.Pack, upper: string, opaque: Set<string>): Promise<void> {
  const seen = new Map<string, string>(); // dev:ino → first path, for hardlinks
  const visit = async (rel: string): Promise<void> => {
    const names = (await readdir(join(upper, rel))).sort();
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const p = join(upper, r);
      const st = await lstat(p);
      const base = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime };
      if (isOverlayWhiteout(st)) {
        await addEntry(pack, { name: whiteoutEntryName(r), type: 'file', size: 0, mode: 0o644, mtime: st.mtime });
      } else if (st.isDirectory()) {
        await addEntry(pack, { ...base, name: r, type: 'directory' });
        if (opaque.has(r)) await addEntry(pack, { name: opaqueEntryName(r), type: 'file', size: 0, mode: 0o644, mtime: st.mtime });
        await visit(r);
      } else if (st.isSymbolicLink()) {
        await addEntry(pack, { ...base, name: r, type: 'symlink', linkname: await readlink(p) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await addEntry(pack, { ...base, name: r, type: 'link', linkname: first, size: 0 });
        } else {
          if (st.nlink > 1) seen.set(key, r);
          await addEntry(pack, { ...base, name: r, type: 'file', size: st.size }, createReadStream(p));
        }
      }
      // Sockets, FIFOs and real devices made inside a container are not carried into images.
    }
  };
  await visit('');
}

/** A tar stream of the changes in `upper`. Errors while walking destroy the stream. */
export async function diffTar(upper: string): Promise<tar.Pack> {
  const opaque = await opaqueDirs(upper);
  const pack = tar.pack();
  walk(pack, upper, opaque).then(
    () => pack.finalize(),
    (e) => pack.destroy(e as Error),
  );
  return pack;
}
