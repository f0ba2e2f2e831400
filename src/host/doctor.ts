// The leak checker: every kernel object and process that carries this daemon's names (its state and run dirs, its
// cgroup parent, its network prefix) but that no Silo object owns. `fix` removes only those.

import { readdir, readFile, rmdir } from 'node:fs/promises';
import { run } from '../common/exec.js';
import type { ComputeService } from '../compute/service.js';
import type { NetworkService } from '../network/types.js';

export interface Finding {
  Kind: 'mount' | 'loop' | 'cgroup' | 'monitor' | 'netns' | 'link';
  Object: string;
  Why: string;
}

export interface DoctorScope {
  stateDir: string;
  runDir: string;
  cgroupParent: string;
}

const ID = /[0-9a-f]{64}/g;

export async function findLeaks(svc: { compute: Pick<ComputeService, 'list'>; network: NetworkService }, scope: DoctorScope): Promise<Finding[]> {
  const systems = new Set(svc.compute.list(true).map((s) => s.Id));
  const unknownId = (text: string) => (text.match(ID) ?? []).find((id) => !systems.has(id));
  const out: Finding[] = [];

  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const mnt = line.split(' ')[4];
    if (!mnt || !(mnt.startsWith(scope.runDir + '/') || mnt.startsWith(scope.stateDir + '/'))) continue;
    const id = unknownId(mnt);
    if (id) out.push({ Kind: 'mount', Object: mnt, Why: `container ${id.slice(0, 12)} does not exist` });
  }

  const loops = JSON.parse((await run('losetup', ['-J', '-l'], { allowFail: true })).stdout || '{"loopdevices":[]}') as { loopdevices: { name: string; 'back-file': string | null }[] };
  for (const l of loops.loopdevices) {
    const back = l['back-file'] ?? '';
    const file = back.replace(/ \(deleted\)$/, '');
    if (!file.startsWith(scope.stateDir + '/')) continue;
    const id = unknownId(file);
    if (id) out.push({ Kind: 'loop', Object: `${l.name} ${file}`, Why: `container ${id.slice(0, 12)} does not exist` });
    else if (back !== file) out.push({ Kind: 'loop', Object: `${l.name} ${file}`, Why: 'its backing file was deleted' });
  }

  for (const ctl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    for (const d of await readdir(`/sys/fs/cgroup/${ctl}/${scope.cgroupParent}`, { withFileTypes: true }).catch(() => [])) {
      if (d.isDirectory() && /^[0-9a-f]{64}$/.test(d.name) && !systems.has(d.name)) {
        out.push({ Kind: 'cgroup', Object: `/sys/fs/cgroup/${ctl}/${scope.cgroupParent}/${d.name}`, Why: 'no such container' });
      }
    }
  }

  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!cmd[0]?.endsWith('conmon') || !cmd.some((a) => a.startsWith(scope.runDir + '/'))) continue;
    const cid = cmd[cmd.indexOf('-c') + 1] ?? cmd[cmd.indexOf('--cid') + 1];
    if (cid && !systems.has(cid)) out.push({ Kind: 'monitor', Object: `conmon pid ${pid}`, Why: `container ${cid.slice(0, 12)} does not exist` });
  }

  const namespaces = new Set(svc.network.listNamespaces().map((n) => n.Name));
  for (const line of (await run('ip', ['netns', 'list'], { allowFail: true })).stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(`${scope.cgroupParent}-`) && !namespaces.has(name)) out.push({ Kind: 'netns', Object: name, Why: 'no such namespace object' });
  }

  const owned = new Set([...svc.network.listNetworks().map((n) => n.Id), ...svc.network.listEndpoints().map((e) => e.Id)]);
  const links = JSON.parse((await run('ip', ['-j', 'link', 'show'], { allowFail: true })).stdout || '[]') as { ifname: string; ifalias?: string }[];
  for (const l of links) {
    const parts = (l.ifalias ?? '').split(':');
    if (parts[0] !== 'silo' || parts[1] !== scope.cgroupParent) continue;
    if (!owned.has(parts[3] ?? '')) out.push({ Kind: 'link', Object: l.ifname, Why: `${parts[2] === 'br' ? 'network' : 'endpoint'} ${String(parts[3]).slice(0, 12)} does not exist` });
  }
  return out;
}

/** Remove what findLeaks found; processes first, then mounts, devices, cgroups and links. */
export async function fixLeaks(found: Finding[]): Promise<void> {
  const order: Finding['Kind'][] = ['monitor', 'mount', 'loop', 'cgroup', 'netns', 'link'];
  for (const kind of order) {
    for (const f of found.filter((x) => x.Kind === kind)) {
      if (kind === 'monitor') process.kill(Number(f.Object.split(' ').pop()), 'SIGKILL');
      else if (kind === 'mount') await run('umount', ['-l', f.Object], { allowFail: true });
      else if (kind === 'loop') await run('losetup', ['-d', f.Object.split(' ')[0]], { allowFail: true });
      else if (kind === 'cgroup') {
        for (const pid of (await readFile(`${f.Object}/cgroup.procs`, 'utf8').catch(() => '')).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
        await rmdir(f.Object).catch(() => {});
      } else if (kind === 'netns') await run('ip', ['netns', 'del', f.Object], { allowFail: true });
      else await run('ip', ['link', 'del', f.Object], { allowFail: true });
    }
  }
}
