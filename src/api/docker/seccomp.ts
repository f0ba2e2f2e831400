// Seccomp profiles docker clients send inline (`--security-opt seccomp=profile.json`: the CLI reads the file and
// sends its JSON). The Docker door keeps each by its digest, written once, and the create spec names the file as a
// localhost profile; a profile is small and the same one is shared by every container that sends it.

import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic.js';
import { dockerInvalid } from './errors.js';

export async function keepSeccompProfile(dir: string, json: string): Promise<string> {
  let p: unknown;
  try {
    p = JSON.parse(json);
  } catch (e) {
    throw dockerInvalid(`invalid seccomp profile: ${(e as Error).message}`);
  }
  if (typeof p !== 'object' || p === null || typeof (p as { defaultAction?: unknown }).defaultAction !== 'string') throw dockerInvalid('invalid seccomp profile: no defaultAction');
  const text = JSON.stringify(p);
  const path = join(dir, `${createHash('sha256').update(text).digest('hex')}.json`);
  if (await stat(path).then(() => true, () => false)) return path;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, text, 0o600);
  return path;
}
