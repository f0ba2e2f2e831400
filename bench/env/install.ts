// Installs the peers from Debian when missing: docker.io (dockerd + its CLI), podman, wrk. Quiet and idempotent: a
// second run only checks. Package scripts must not start a system dockerd (there is no systemd, but the init script
// would), so a policy-rc.d that forbids service starts is in place during the install and removed if we made it.

import { access, rm, writeFile } from 'node:fs/promises';
import { exec } from '../lib/proc.js';

const WANT: Array<[bin: string, pkg: string]> = [
  ['/usr/sbin/dockerd', 'docker.io'],
  ['/usr/bin/podman', 'podman'],
  ['/usr/bin/wrk', 'wrk'],
  ['/usr/sbin/runc', 'runc'],
  ['/usr/bin/conmon', 'conmon'],
  ['/usr/sbin/iptables', 'iptables'],
];

const exists = (p: string) => access(p).then(() => true, () => false);

export async function installPeers(log: (m: string) => void): Promise<void> {
  const missing: string[] = [];
  for (const [bin, pkg] of WANT) if (!(await exists(bin))) missing.push(pkg);
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const policy = '/usr/sbin/policy-rc.d';
  const madePolicy = !(await exists(policy));
  if (madePolicy) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await exec('apt-get', ['update', '-qq'], { env, timeoutMs: 300_000, discardStdout: true });
    await exec('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000, discardStdout: true });
  } finally {
    if (madePolicy) await rm(policy, { force: true });
  }
}
