// `silo daemon`: runs the daemon in this process.

import { setFlagsFromString } from 'node:v8';

export async function daemon(opts: { stateDir: string; runDir: string; cgroupParent: string; logLevel: string }): Promise<number | void> {
  // Keep V8's young generation at its initial size (1 MB semi-spaces) instead of letting it grow to 16 MB ones: the
  // daemon's requests allocate little, and the grown semi-spaces stay resident while it idles (~14 MB of its RSS).
  // Set before the daemon's modules load; unlike --max-semi-space-size, this flag takes effect after V8 has started.
  setFlagsFromString('--semi-space-growth-factor=1');
  const { runDaemon } = await import('../../host/daemon.js');
  await runDaemon(opts);
}
