// `silo daemon`: runs the daemon in this process.

import { setFlagsFromString } from 'node:v8';

export async function daemon(opts: import('../../host/daemon.js').DaemonOptions): Promise<number | void> {
  // Keep V8's young generation at its initial size (1 MB semi-spaces) instead of letting it grow to 16 MB ones: the
  // daemon's requests allocate little, and the grown semi-spaces stay resident while it idles (~14 MB of its RSS).
  // Set before the daemon's modules load; unlike --max-semi-space-size, this flag takes effect after V8 has started.
  setFlagsFromString('--semi-space-growth-factor=1');
  // Collect the old generation when it has grown 30% past what survived the last full collection, instead of letting
  // V8 pick up to 4×: request garbage that outlives a scavenge (1 MB semi-spaces promote quickly) is then collected
  // during a burst rather than left resident until the memory reducer runs, 8–16 s after the daemon goes idle. With a
  // ~15 MB live heap a full collection takes a few ms.
  setFlagsFromString('--heap-growing-percent=30');
  // A regular expression from a request (docker ps --filter name=…, as dockerd takes them) could backtrack for hours
  // on a crafted pattern and hold the event loop: past V8's backtrack limit a match finishes in linear time instead.
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  const { runDaemon } = await import('../../host/daemon.js');
  await runDaemon(opts);
}
