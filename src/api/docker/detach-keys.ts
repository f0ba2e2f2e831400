// docker's detach keys: a key sequence on an attached stdin (ctrl-p ctrl-q unless the client names others) that ends
// the attachment and leaves the container running. The bytes of the sequence are never passed to the container; a
// partial match that breaks off is passed on as it came.

import { dockerInvalid } from './errors.js';

/** "ctrl-p,ctrl-q" → [0x10, 0x11]; "a,ctrl-[" → [0x61, 0x1b], as docker's term.ToBytes. */
export function parseDetachKeys(spec: string): number[] {
  return spec.split(',').map((k) => {
    const key = k.trim().toLowerCase();
    if (key.length === 1) return key.charCodeAt(0);
    const m = /^ctrl-(.)$/.exec(key);
    const c = m?.[1];
    if (c !== undefined) {
      if (c >= 'a' && c <= 'z') return c.charCodeAt(0) - 96;
      const special: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
      if (c in special) return special[c];
    }
    throw dockerInvalid(`Invalid detach keys (${spec}) provided`);
  });
}

/** Feeds stdin through; calls `detach` (and drops the sequence) when the keys are typed. */
export class DetachKeyFilter {
  private matched = 0;

  constructor(
    private readonly keys: number[],
    private readonly pass: (b: Buffer) => void,
    private readonly detach: () => void,
  ) {}

  write(b: Buffer): void {
    const out: number[] = [];
    for (const byte of b) {
      if (byte === this.keys[this.matched]) {
        if (++this.matched === this.keys.length) {
          if (out.length) this.pass(Buffer.from(out));
          this.detach();
          return;
        }
        continue;
      }
      out.push(...this.keys.slice(0, this.matched));
      this.matched = 0;
      if (byte === this.keys[0]) this.matched = 1;
      else out.push(byte);
    }
    if (out.length) this.pass(Buffer.from(out));
  }
}
