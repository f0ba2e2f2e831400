// Linux capability names by bit number (linux/capability.h), and what the daemon itself holds: a privileged
// container gets exactly that, as root here may lack some (CAP_SYS_RESOURCE) and runc cannot grant what it lacks.

import { readFileSync } from 'node:fs';
import { invalid } from '../../common/errors.js';

export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; unknown names are refused. */
export function capName(s: string): string {
  const n = s.toUpperCase().startsWith('CAP_') ? s.toUpperCase() : `CAP_${s.toUpperCase()}`;
  if (!CAPABILITIES.includes(n)) throw invalid(`unknown capability: ${JSON.stringify(s)}`);
  return n;
}

/** Names of the bits set in a /proc/<pid>/status capability mask ("000001fffeffffff"). */
export function capsOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

let held: string[] | undefined;
/** The capabilities in the daemon's own bounding and effective sets (read once). */
export function daemonCapabilities(): string[] {
  if (held) return held;
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (k: string) => /^\s*([0-9a-f]+)/i.exec(status.split('\n').find((l) => l.startsWith(`${k}:`))?.slice(k.length + 1) ?? '')?.[1] ?? '0';
  const eff = new Set(capsOfMask(field('CapEff')));
  held = capsOfMask(field('CapBnd')).filter((c) => eff.has(c));
  return held;
}
