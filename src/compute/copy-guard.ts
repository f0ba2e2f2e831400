// A copy has a timeout: it ends when no byte has moved for a while, whichever side stalls (a client that sends
// nothing, or one that reads nothing). The container keeps running throughout; only the copy is given up.

import { Readable } from 'node:stream';
import { SiloError } from '../common/errors.js';

export const DEFAULT_COPY_IDLE_MS = 120_000;

const idle = (ms: number) => new SiloError('Unavailable', 'SILO_COPY_TIMEOUT', `the copy was given up: no data moved for ${Math.round(ms / 1000)} s`);

/** `src` passed through; fails once `ms` go by without a chunk arriving (or being taken). */
export async function* guardIn<T>(src: AsyncIterable<T>, ms: number): AsyncGenerator<T> {
  const it = src[Symbol.asyncIterator]();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(idle(ms)), ms)));
      let r: IteratorResult<T>;
      try {
        r = await Promise.race([it.next(), expired]);
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    // A request body stops being read: its stream is destroyed, not waited for.
    void Promise.resolve(it.return?.()).catch(() => {});
  }
}

/** `src` as a readable that is destroyed once `ms` go by with no chunk taken by its reader. */
export function guardOut(src: Readable, ms: number): Readable {
  let last = Date.now();
  const out = Readable.from(
    (async function* () {
      for await (const chunk of src) {
        last = Date.now();
        yield chunk;
        last = Date.now();
      }
    })(),
    { objectMode: false },
  );
  const check = setInterval(() => {
    if (Date.now() - last < ms) return;
    clearInterval(check);
    out.destroy(idle(ms));
    src.destroy();
  }, Math.min(ms, 1000));
  check.unref();
  out.on('close', () => {
    clearInterval(check);
    src.destroy();
  });
  return out;
}
