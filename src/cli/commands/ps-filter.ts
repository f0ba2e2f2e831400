// `silo ps --filter KEY=VALUE`: docker ps's filters, applied to the native API's records. Keys that need more than
// the record (a network's name, a volume's path, an image's names) fetch it once, and only when given. A key or value
// docker ps would refuse is refused here too, so a typo never lists more than was asked for.

import type { System as ComputeSystemRecord } from '../../api/native/wire.js';
import { normalizeName } from '../../storage/reference.js';
import { call, enc } from '../client.js';
import { CliError } from '../errors.js';
import { nameRegExp, portRange, psValueError } from '../../common/ps-filters.js';

const KEYS = ['ancestor', 'before', 'exited', 'id', 'isolation', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume'];
const ALIAS: Record<string, string> = { default: 'process', hyperv: 'vm' };
// docker's restarting, removing and dead have no record of their own here: they match none.
const STATUS: Record<string, ComputeSystemRecord['State']> = { created: 'Created', running: 'Running', paused: 'Paused', exited: 'Stopped' };

/** `key=value` words → key → values; throws on a key or value docker ps refuses. */
export function parseFilters(specs: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of specs) {
    const i = s.indexOf('=');
    const k = s.slice(0, i);
    const v = s.slice(i + 1);
    if (i <= 0 || !KEYS.includes(k)) throw new CliError(`invalid filter '${i > 0 ? k : s}': silo ps takes ${KEYS.join(', ')}`);
    const bad = psValueError(k, v);
    if (bad) throw new CliError(bad);
    out.set(k, [...(out.get(k) ?? []), v]);
  }
  return out;
}

/** What the filters need besides the records, fetched from the daemon when a filter asks for it. */
export interface Lookups {
  /** Endpoint id → its network's id and name. */
  endpointNetworks: Map<string, { id: string; name: string }>;
  /** Volume name → its data path on the host. */
  volumePaths: Map<string, string>;
  /** Image reference (as given) → image id. */
  imageIds: Map<string, string>;
}

export async function lookups(f: Map<string, string[]>): Promise<Lookups> {
  const out: Lookups = { endpointNetworks: new Map(), volumePaths: new Map(), imageIds: new Map() };
  if (f.has('network')) {
    const nets = new Map((await call<{ Id: string; Name: string }[]>('GET', '/v1/networks')).map((n) => [n.Id, n.Name]));
    for (const e of await call<{ Id: string; NetworkId: string }[]>('GET', '/v1/endpoints')) out.endpointNetworks.set(e.Id, { id: e.NetworkId, name: nets.get(e.NetworkId) ?? '' });
  }
  for (const v of f.get('volume') ?? []) {
    if (v.startsWith('/')) continue; // a path in the container
    const vol = await call<{ Mountpoint: string }>('GET', `/v1/volumes/${enc(v)}`).catch(() => undefined);
    if (vol) out.volumePaths.set(v, vol.Mountpoint);
  }
  if (f.has('ancestor')) {
    const images = await call<{ id: string; names: string[] }[]>('GET', '/v1/images');
    for (const a of f.get('ancestor')!) {
      const full = (() => {
        try {
          return normalizeName(a);
        } catch {
          return a;
        }
      })();
      const hit = images.find((i) => i.names.includes(full) || i.id.replace(/^sha256:/, '').startsWith(a.replace(/^sha256:/, '')));
      if (hit) out.imageIds.set(a, hit.id);
    }
  }
  return out;
}

/** The test for `records` (all of them: before/since name one of them). */
export function matcher(f: Map<string, string[]>, records: ComputeSystemRecord[], l: Lookups): (r: ComputeSystemRecord) => boolean {
  const any = (k: string, test: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(test);
  const find = (ref: string) => {
    const r = records.find((x) => x.Name === ref || x.Id === ref) ?? records.find((x) => x.Id.startsWith(ref));
    if (!r) throw new CliError(`No such container: ${ref}`);
    return Date.parse(r.Created);
  };
  const before = (f.get('before') ?? []).map(find);
  const since = (f.get('since') ?? []).map(find);
  const names = (f.get('name') ?? []).map((v) => nameRegExp(v)!);
  const ports = (f.get('publish') ?? []).map((v) => portRange(v)!);
  return (r) => {
    const doc = r.Document;
    const created = Date.parse(r.Created);
    const mapped = doc?.Container?.MappedDirectories ?? [];
    return (
      any('id', (v) => r.Id.startsWith(v)) &&
      (!names.length || names.some((re) => re.test(r.Name))) &&
      any('label', (v) => {
        const i = v.indexOf('=');
        const labels = doc?.Labels ?? {};
        return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
      }) &&
      any('status', (v) => STATUS[v] === r.State) &&
      any('exited', (v) => r.State === 'Stopped' && String(r.ExitCode ?? 0) === v) &&
      any('ancestor', (v) => l.imageIds.get(v) === r.ImageId) &&
      before.every((t) => created < t) &&
      since.every((t) => created > t) &&
      // default: the daemon's default isolation, process; hyperv is docker's name for vm.
      any('isolation', (v) => (ALIAS[v] ?? v) === doc?.Isolation) &&
      any('network', (v) => (doc?.Container?.Networking?.Endpoints ?? []).some((e) => {
        const n = l.endpointNetworks.get(e);
        return !!n && (n.name === v || n.id.startsWith(v));
      })) &&
      any('volume', (v) => mapped.some((m) => m.ContainerPath === v || (l.volumePaths.has(v) && (m.HostPath === l.volumePaths.get(v) || m.HostPath.startsWith(`${l.volumePaths.get(v)}/`))))) &&
      (!ports.length || ports.some((t) => (doc?.Container?.Networking?.PortMappings ?? []).some((m) => t(m.InternalPort, m.Protocol))))
    );
  };
}
