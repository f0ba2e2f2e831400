// Content addresses: sha256 digests, OCI chain IDs, and the canonical JSON an image id is computed over.

import { createHash } from 'node:crypto';

export const sha256 = (data: string | Uint8Array): string => 'sha256:' + createHash('sha256').update(data).digest('hex');

/** "sha256:<hex>" → "<hex>"; used for directory and file names. */
export const hexOf = (digest: string): string => digest.replace(/^sha256:/, '');

export const isDigest = (s: string): boolean => /^sha256:[a-f0-9]{64}$/.test(s);

/** OCI chain IDs: the bottom layer's is its diff ID; above, sha256(parentChainId + " " + diffId). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

export const childChainId = (parent: string | undefined, diffId: string): string =>
  parent === undefined ? diffId : sha256(`${parent} ${diffId}`);

/** JSON with sorted object keys and no whitespace, so the same document always hashes to the same id. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return '[' + v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',') + ']';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(o[k])).join(',') + '}';
}
