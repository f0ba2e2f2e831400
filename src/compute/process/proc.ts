// Finding a conmon again from its pidfile. A pid alone may have been reused since, so a process counts as "our
// conmon" only if its command line names that very pidfile (we pass it with -P).

import { readSmallText } from '../../common/atomic.js';

// Read synchronously (a pidfile on tmpfs, a /proc file): a removal asks this a few times while it waits.
async function conmonPid(pidFile: string): Promise<number | undefined> {
  const raw = readSmallText(pidFile);
  const pid = Number.parseInt(raw.trim(), 10);
  if (!(pid > 1)) return undefined;
  const cmd = readSmallText(`/proc/${pid}/cmdline`);
  // A zombie has an empty cmdline: it is gone for our purposes.
  const args = cmd.split('\0');
  return args[0]?.endsWith('conmon') && args.includes(pidFile) ? pid : undefined;
}

export async function conmonAlive(pidFile: string): Promise<boolean> {
  return (await conmonPid(pidFile)) !== undefined;
}

/** Wait up to ms for the conmon to exit; true when it is gone. Looks again soon at first: it is usually on its way out. */
export async function waitGone(pidFile: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    if (!(await conmonAlive(pidFile))) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** SIGKILL the conmon of this pidfile, if it still runs, and wait briefly for it to go. */
export async function killConmon(pidFile: string, _label: string): Promise<void> {
  const pid = await conmonPid(pidFile);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pidFile, 2000);
}
