// OCI layer whiteouts ⇄ overlayfs whiteouts. In a tar, deletion of NAME is an empty file ".wh.NAME" and
// "this directory hides everything below it" is ".wh..wh..opq". On disk, overlayfs wants a 0:0 character
// device named NAME and the xattr trusted.overlay.opaque=y on the directory.

export const WH_PREFIX = '.wh.';
export const WH_OPAQUE = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

export type WhiteoutKind =
  | { kind: 'none' }
  | { kind: 'whiteout'; target: string } // delete `target` (a sibling name) in the lower layers
  | { kind: 'opaque' } // the containing directory is opaque
  | { kind: 'meta' }; // other .wh..wh.* AUFS bookkeeping: skipped

/** Classify the last component of an entry path. */
export function classifyName(base: string): WhiteoutKind {
  if (base === WH_OPAQUE) return { kind: 'opaque' };
  if (base.startsWith(WH_PREFIX + WH_PREFIX)) return { kind: 'meta' };
  if (base.startsWith(WH_PREFIX)) {
    const target = base.slice(WH_PREFIX.length);
    if (target === '' || target === '.' || target === '..') return { kind: 'meta' };
    return { kind: 'whiteout', target };
  }
  return { kind: 'none' };
}

/** Overlay whiteout (char device 0:0) at relative path `rel` → tar entry name. */
export function whiteoutEntryName(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? WH_PREFIX + rel : `${rel.slice(0, i + 1)}${WH_PREFIX}${rel.slice(i + 1)}`;
}

/** Opaque directory at relative path `dir` ("" = root) → tar entry name of its opaque marker. */
export const opaqueEntryName = (dir: string): string => (dir === '' ? WH_OPAQUE : `${dir}/${WH_OPAQUE}`);

/** Is this lstat result an overlayfs whiteout? */
export function isOverlayWhiteout(st: { isCharacterDevice(): boolean; rdev: number }): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}
