// `silo daemon`: runs the daemon in this process.

export async function daemon(opts: { stateDir: string; runDir: string; cgroupParent: string; logLevel: string }): Promise<number | void> {
  const { runDaemon } = await import('../../host/daemon.js');
  await runDaemon(opts);
}
