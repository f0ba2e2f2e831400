// What a bench's own Silo daemon leaves once stopped, removed: its default network and nft table (they outlive a
// daemon, as docker's bridge does), its cgroups and its state and run dirs.

import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openNetworkService } from '../../src/network/index.js';

export async function removeDaemonLeftovers(tag: string, stateDir: string, runDir: string): Promise<void> {
  const net = await openNetworkService({ stateDir: join(stateDir, 'network'), runDir: join(runDir, 'network'), prefix: tag });
  await net.purge();
  await net.close();
  for (const ctl of readdirSync('/sys/fs/cgroup')) {
    try {
      rmdirSync(`/sys/fs/cgroup/${ctl}/${tag}`);
    } catch {
      /* not made in this controller */
    }
  }
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
}
