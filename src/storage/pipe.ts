// A push-fed byte stream, so one reader of a blob (the content store writing it) can hand every chunk to a second
// (a layer extractor) as it goes: the pusher waits while too much is queued; a second reader that stops early (it
// refused the layer) is dropped, and the pusher carries on alone.

const HIGH_WATER = 4 * 1024 * 1024;

export class Pipe implements AsyncIterable<Buffer> {
  private queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private error: unknown;
  private gone = false;
  private wakeReader?: () => void;
  private wakePusher?: () => void;

  /** Queue a chunk; resolves once the queue is below the high-water mark (or the reader has gone). */
  async push(b: Buffer): Promise<void> {
    if (this.gone || this.ended) return;
    this.queue.push(b);
    this.queued += b.length;
    this.wake('reader');
    while (this.queued >= HIGH_WATER && !this.gone) await new Promise<void>((r) => (this.wakePusher = r));
  }

  /** No more chunks; with `error`, the reader gets it instead of the end. */
  end(error?: unknown): void {
    this.ended = true;
    this.error = error;
    this.wake('reader');
  }

  private wake(who: 'reader' | 'pusher'): void {
    const f = who === 'reader' ? this.wakeReader : this.wakePusher;
    if (who === 'reader') this.wakeReader = undefined;
    else this.wakePusher = undefined;
    f?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const b = this.queue.shift();
        if (b) {
          this.queued -= b.length;
          if (this.queued < HIGH_WATER) this.wake('pusher');
          yield b;
          continue;
        }
        if (this.ended) {
          if (this.error !== undefined) throw this.error;
          return;
        }
        await new Promise<void>((r) => (this.wakeReader = r));
      }
    } finally {
      this.gone = true;
      this.queue = [];
      this.queued = 0;
      this.wake('pusher');
    }
  }
}
