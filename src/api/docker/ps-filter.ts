// The filters of `docker ps` (GET /containers/json), every one dockerd accepts: a key Silo does not know is refused
// (400), as dockerd refuses it, and a value outside a key's set too, so a typo never lists more than was asked for.

import type { ComputeSystemRecord } from '../../compute/types.js';
import type { Ctx } from './ctx.js';
import { dockerInvalid } from './errors.js';
import { containerSummary, dockerStatus } from './inspect.js';
import { labelMatch } from './util.js';
import { nameRegExp, portRange, psValueError } from '../../common/ps-filters.js';

export const PS_FILTERS = ['ancestor', 'before', 'expose', 'exited', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume'] as const;

/** The test `docker ps` applies for filters `f` (checked here, before anything is listed). */
export async function psFilter(x: Ctx, f: Map<string, string[]>): Promise<(r: ComputeSystemRecord) => Promise<boolean>> {
  const c = x.svc.compute;
  for (const [k, vs] of f) for (const v of vs) {
    const bad = psValueError(k, v);
    if (bad) throw dockerInvalid(bad);
  }
  const publish = (f.get('publish') ?? []).map((v) => portRange(v)!);
  const expose = (f.get('expose') ?? []).map((v) => portRange(v)!);
  const names = (f.get('name') ?? []).map((v) => nameRegExp(v)!);
  // before= / since= a container (by name or id; an unknown one is a 404): created strictly earlier / later.
  const created = (r: ComputeSystemRecord) => Date.parse(r.Created);
  const before = (f.get('before') ?? []).map((ref) => c.get(ref));
  const since = (f.get('since') ?? []).map((ref) => c.get(ref));
  const ancestors = await Promise.all((f.get('ancestor') ?? []).map((a) => x.svc.storage.getImage(a).then((i) => i.id, () => '')));
  const exposedOf = async (r: ComputeSystemRecord): Promise<string[]> => {
    const img = await x.svc.storage.getImage(r.ImageId).then((i) => i.config.ExposedPorts ?? {}, () => ({}));
    return [...Object.keys(img), ...Object.keys(x.meta.get(r.Id)?.Config.ExposedPorts ?? {})];
  };
  const any = <T>(want: T[] | undefined, test: (w: T) => boolean) => !want?.length || want.some(test);

  return async (r) => {
    // The docker view of the container, made only for the filters that need it (network, volume).
    let view: { nets: Record<string, { NetworkID: string }>; mounts: { Name?: string; Destination: string }[]; mode: string } | undefined;
    const docker = () => {
      if (view) return view;
      const s = containerSummary(x.svc, r, x.meta.get(r.Id));
      return (view = { nets: (s.NetworkSettings as { Networks: Record<string, { NetworkID: string }> }).Networks, mounts: s.Mounts as { Name?: string; Destination: string }[], mode: (s.HostConfig as { NetworkMode: string }).NetworkMode });
    };
    const iso = String(x.meta.get(r.Id)?.HostConfig.Isolation ?? '');
    if (!any(f.get('status'), (v) => v === dockerStatus(r, c.isRestarting(r.Id)))) return false;
    if (!any(f.get('exited'), (v) => r.State === 'Stopped' && v === String(r.ExitCode ?? 0))) return false;
    if (!any(names, (re) => re.test(r.Name))) return false;
    if (!any(f.get('id'), (v) => r.Id.startsWith(v))) return false;
    if (f.has('label') && !labelMatch(r.Document.Labels, f.get('label')!)) return false;
    if (!any(ancestors, (id) => r.ImageId === id)) return false;
    if (before.some((b) => b.Id === r.Id || created(r) >= created(b))) return false;
    if (since.some((b) => b.Id === r.Id || created(r) <= created(b))) return false;
    if (!any(f.get('health'), (v) => v === (c.healthOf(r.Id)?.Status ?? 'none'))) return false;
    if (!any(f.get('isolation'), (v) => (v === 'default' ? iso === '' || iso === 'default' : (v === 'hyperv' ? 'vm' : v) === r.Document.Isolation))) return false;
    // Silo runs no swarm: no container is a task.
    if (f.get('is-task')?.some((v) => v === 'true' || v === '1')) return false;
    if (!any(f.get('network'), (v) => (v === 'none' && docker().mode === 'none') || Object.entries(docker().nets).some(([n, e]) => n === v || (e.NetworkID !== '' && e.NetworkID.startsWith(v))))) return false;
    if (!any(f.get('volume'), (v) => docker().mounts.some((m) => m.Name === v || m.Destination === v))) return false;
    const mapped = r.Document.Container.Networking?.PortMappings ?? [];
    if (!any(publish, (t) => mapped.some((m) => t(m.InternalPort, m.Protocol)))) return false;
    if (expose.length) {
      const ports = (await exposedOf(r)).map((k) => k.split('/'));
      if (!expose.some((t) => ports.some(([p, proto]) => t(Number(p), proto ?? 'tcp')))) return false;
    }
    return true;
  };
}
