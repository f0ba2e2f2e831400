import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanEntryPath } from '../../src/storage/paths.js';
import { classifyName, isOverlayWhiteout, opaqueEntryName, whiteoutEntryName } from '../../src/storage/whiteout.js';
import { mountedIn, parseMountinfo } from '../../src/common/mountinfo.js';
import { parseGetfattr } from '../../src/storage/commit.js';
import { canonicalJson, chainIds, sha256 } from '../../src/storage/digest.js';

test('entry paths are normalised inside the layer', () => {
  const ok: [string, string][] = [
    ['a/b', 'a/b'],
    ['./a/./b/', 'a/b'],
    ['/etc/passwd', 'etc/passwd'], // leading slash is relative to the layer, as docker does
    ['a/../b', 'b'],
    ['a//b', 'a/b'],
    ['./', ''],
    ['..a/b..', '..a/b..'],
  ];
  for (const [i, o] of ok) assert.equal(cleanEntryPath(i), o, i);
});

test('paths escaping the layer are refused, naming the entry', () => {
  for (const bad of ['..', '../x', 'a/../../x', '/../x', './../etc', 'a/b/../../../c', 'x\0y']) {
    assert.throws(() => cleanEntryPath(bad), (e: any) => e.class === 'InvalidArgument' && e.message.includes('refused'), bad);
  }
});

test('whiteout names: tar → overlay', () => {
  assert.deepEqual(classifyName('.wh.foo'), { kind: 'whiteout', target: 'foo' });
  assert.deepEqual(classifyName('.wh..wh..opq'), { kind: 'opaque' });
  assert.deepEqual(classifyName('.wh..wh.plnk'), { kind: 'meta' });
  assert.deepEqual(classifyName('.wh.'), { kind: 'meta' });
  assert.deepEqual(classifyName('.wh...'), { kind: 'meta' });
  assert.deepEqual(classifyName('foo.wh.bar'), { kind: 'none' });
  assert.deepEqual(classifyName('.whx'), { kind: 'none' });
});

test('whiteout names: overlay → tar', () => {
  assert.equal(whiteoutEntryName('foo'), '.wh.foo');
  assert.equal(whiteoutEntryName('etc/group'), 'etc/.wh.group');
  assert.equal(opaqueEntryName('a/b'), 'a/b/.wh..wh..opq');
  assert.equal(opaqueEntryName(''), '.wh..wh..opq');
  assert.equal(isOverlayWhiteout({ isCharacterDevice: () => true, rdev: 0 }), true);
  assert.equal(isOverlayWhiteout({ isCharacterDevice: () => true, rdev: 259 }), false);
  assert.equal(isOverlayWhiteout({ isCharacterDevice: () => false, rdev: 0 }), false);
});

test('getfattr output parsing', () => {
  const out = '# file: /u/a\ntrusted.overlay.opaque="y"\n\n# file: /u/b\\040c\ntrusted.overlay.opaque="y"\n\n# file: /u/d\ntrusted.overlay.opaque="n"\n';
  assert.deepEqual([...parseGetfattr(out, '/u')].sort(), ['a', 'b c']);
});

test('a mount is found by its mount point only, escaped as the kernel escapes it', () => {
  const mi = '36 35 98:0 / /run/silo\\040x/r rw,relatime shared:1 - overlay overlay rw,lowerdir=a\n40 1 7:0 /run/b /mnt/c rw - ext4 /dev/loop0 rw\n41 1 7:0 / /mnt/d\\134e rw - ext4 /dev/loop1 rw\n';
  assert.equal(mountedIn(mi, '/run/silo x/r'), true);
  assert.equal(mountedIn(mi, '/run/silo'), false); // a prefix of a mount point
  assert.equal(mountedIn(mi, '/run/b'), false); // the root of a bind mount, not a mount point
  assert.equal(mountedIn(mi, '/mnt/c'), true);
  assert.equal(mountedIn(mi, '/mnt/d\\e'), true);
  assert.equal(mountedIn(mi, '/mnt/d\\134e'), false);
});

test('mountinfo parsing unescapes paths', () => {
  const mi = '36 35 98:0 / /run/silo\\040x/r rw,relatime shared:1 - overlay overlay rw,lowerdir=a\n37 1 7:0 / /mnt rw - ext4 /dev/loop0 rw\n';
  const m = parseMountinfo(mi);
  assert.equal(m[0].mountPoint, '/run/silo x/r');
  assert.equal(m[0].fsType, 'overlay');
  assert.equal(m[1].source, '/dev/loop0');
});

test('chain IDs and canonical JSON', () => {
  const a = sha256('a');
  const b = sha256('b');
  assert.deepEqual(chainIds([a, b]), [a, sha256(`${a} ${b}`)]);
  assert.equal(canonicalJson({ b: 1, a: [1, { d: undefined, c: 'x' }] }), '{"a":[1,{"c":"x"}],"b":1}');
});
