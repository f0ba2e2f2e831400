// Everything the bench starts registers how to undo it here, at the moment it is made; teardown runs the steps in
// reverse order, once, whether the run ends, fails or is interrupted (SIGINT/SIGTERM/SIGHUP). A failing step is
// reported and the rest still run, so one stuck object does not leave the others behind.

type Step = { name: string; fn: () => Promise<unknown> | unknown };

const steps: Step[] = [];
let running: Promise<void> | undefined;

export function onCleanup(name: string, fn: Step['fn']): void {
  steps.push({ name, fn });
}

export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (steps.length) {
      const s = steps.pop()!;
      try {
        await s.fn();
      } catch (e) {
        process.stderr.write(`bench cleanup: ${s.name}: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
  })();
  return running;
}

export function cleanupOnSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, cleaning up…\n`);
      cleanupAll().finally(() => process.exit(130));
    });
  }
}
