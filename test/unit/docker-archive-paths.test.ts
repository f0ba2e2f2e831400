import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { putArchive, resolvePath, statPath } from '../../src/compute/archive.js';

test('paths resolve inside the root whatever the symlinks say', async () => {
  const root = await mkdtemp(join(tmpdir(), 'silo-root-'));
  try {
    await mkdir(join(root, 'etc'));
    await symlink('/', join(root, 'up'));
    await symlink('../../../../etc', join(root, 'rel'));
    const v = { rootfs: root, mounts: [] };
    assert.equal(await resolvePath(v, '/up/up/etc/passwd', true), '/etc/passwd');
    assert.equal(await resolvePath(v, '/rel', true), '/etc');
    assert.equal(await resolvePath(v, '/../../x', true), '/x');
    const s = await statPath(v, '/etc', 'c');
    assert.equal(s.stat.mode, 2 ** 31 + 0o755 - (0o755 & ~(s.stat.mode & 0o777)));
    assert.ok(s.stat.mode >= 2 ** 31);
    await assert.rejects(statPath(v, '/nope', 'c'), /Could not find the file \/nope in container c/);

    // An archive can neither climb out nor write through a link.
    const pack = (name: string) => {
      const p = tar.pack();
      p.entry({ name }, 'x');
      p.finalize();
      return p as unknown as AsyncIterable<Uint8Array>;
    };
    await assert.rejects(putArchive(v, '/etc', pack('../../outside')), /escapes/);
    await assert.rejects(putArchive(v, '/', pack('up/etc/evil')), /refused entry "up\/etc\/evil": its path passes through the symlink "up"/);
    await putArchive(v, '/up', pack('ok.txt'));
    assert.equal(await readFile(join(root, 'ok.txt'), 'utf8'), 'x');
    await writeFile(join(root, 'etc', 'f'), 'y');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
