// Docker's create body (Config with HostConfig and NetworkingConfig embedded) → Silo's CreateSystemRequest.
// Every resource and process setting lands in the compute document; what the document cannot hold goes in the
// DockerMeta sidecar so inspect can report it.

import { randomBytes } from 'node:crypto';
import { isAbsolute } from 'node:path';
import type { MappedDirectory } from '../../compute/types.js';
import type { CreateSystemRequest, Networking } from '../../compute/types.js';
import type { Image } from '../../storage/types.js';
import { dockerInvalid } from './errors.js';
import type { DockerMeta } from './meta.js';
import { portMappings } from './ports.js';
import type { StorageService } from '../../storage/types.js';

const MiB = 1024 * 1024;

function envMap(env: unknown): Record<string, string> | undefined {
  if (!Array.isArray(env) || env.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of env.map(String)) {
    const i = e.indexOf('=');
    // "-e NAME" with NAME unset in the client's environment arrives without "=": docker drops it.
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

const strs = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : typeof v === 'string' && v ? [v] : undefined);

/** shares 2..262144 → HCS Weight 1..10000 (the inverse of the backend's mapping). */
export const sharesToWeight = (s: number) => Math.min(10000, Math.max(1, Math.round(1 + ((s - 2) * 9999) / (262144 - 2))));

export interface Translated {
  req: CreateSystemRequest;
  meta: DockerMeta;
  warnings: string[];
}

/** Where the compute document's Network comes from: docker's NetworkMode. */
export function networkOf(mode: string | undefined): string | undefined {
  const m = mode ?? '';
  if (m === '' || m === 'default' || m === 'bridge') return undefined; // Silo's default nat network
  if (m === 'none') return 'none';
  if (m === 'host') throw dockerInvalid('network mode "host" is not supported by Silo: containers always get their own network namespace');
  if (m.startsWith('container:')) throw dockerInvalid('network mode "container:<name>" is not supported by Silo yet');
  return m;
}

export async function translateCreate(body: Record<string, any>, name: string | undefined, image: Image, vols: Pick<StorageService, 'createVolume'>): Promise<Translated> {
  const hc: Record<string, any> = body.HostConfig ?? {};
  const warnings: string[] = [];
  const iso = String(hc.Isolation ?? '');
  if (iso === 'hyperv') throw dockerInvalid('invalid isolation (hyperv): Silo\'s vm isolation is not available yet on this host; use --isolation=process');
  if (!['', 'default', 'process'].includes(iso)) throw dockerInvalid(`invalid isolation (${iso}): Silo supports 'process' and 'default' ('hyperv' once vm isolation exists)`);
  if (hc.Privileged) throw dockerInvalid('privileged containers are not supported by Silo');

  // Mounts: Binds, Mounts and anonymous volumes (Config.Volumes and the image's VOLUMEs) all become bind mounts.
  const mapped: MappedDirectory[] = [];
  const mounts: DockerMeta['Mounts'] = [];
  const taken = new Set<string>();
  const volume = async (vname: string | undefined, target: string, ro: boolean) => {
    const v = await vols.createVolume(vname ?? randomBytes(32).toString('hex'), { labels: vname ? {} : { 'com.docker.volume.anonymous': '' } });
    mapped.push({ HostPath: v.Mountpoint, ContainerPath: target, ReadOnly: ro });
    mounts.push({ Type: 'volume', Name: v.Name, Source: v.Mountpoint, Destination: target, Driver: 'local', Mode: ro ? 'ro' : 'z', RW: !ro, Propagation: '' });
    taken.add(target);
  };
  const bind = (src: string, target: string, ro: boolean, mode: string) => {
    mapped.push({ HostPath: src, ContainerPath: target, ReadOnly: ro });
    mounts.push({ Type: 'bind', Source: src, Destination: target, Mode: mode, RW: !ro, Propagation: 'rprivate' });
    taken.add(target);
  };
  for (const b of strs(hc.Binds) ?? []) {
    const parts = b.split(':');
    if (parts.length < 2 || parts.length > 3) throw dockerInvalid(`invalid volume specification: '${b}'`);
    const [src, target, opts = ''] = parts;
    if (!isAbsolute(target)) throw dockerInvalid(`invalid volume specification: '${b}': invalid mount config: mount path must be absolute`);
    const ro = opts.split(',').includes('ro');
    if (isAbsolute(src)) bind(src, target, ro, opts);
    else await volume(src, target, ro);
  }
  for (const m of (hc.Mounts ?? []) as Record<string, any>[]) {
    const target = String(m.Target ?? m.Destination ?? '');
    if (!isAbsolute(target)) throw dockerInvalid(`invalid mount config: mount path must be absolute: ${target}`);
    if (m.Type === 'bind') bind(String(m.Source), target, !!m.ReadOnly, '');
    else if (m.Type === 'volume') await volume(m.Source ? String(m.Source) : undefined, target, !!m.ReadOnly);
    else throw dockerInvalid(`mount type ${JSON.stringify(m.Type)} is not supported by Silo (bind and volume are)`);
  }
  for (const t of [...Object.keys(body.Volumes ?? {}), ...Object.keys(image.config.Volumes ?? {})]) if (!taken.has(t)) await volume(undefined, t, false);

  // Resources. HCS's processor settings are exclusive: a quota wins over a weight.
  const processor: { Count?: number; Weight?: number } = {};
  if (hc.NanoCpus > 0) processor.Count = hc.NanoCpus / 1e9;
  else if (hc.CpuQuota > 0) processor.Count = hc.CpuQuota / (hc.CpuPeriod > 0 ? hc.CpuPeriod : 100000);
  if (hc.CpuShares > 0) {
    if (processor.Count !== undefined) warnings.push('CPU shares are ignored when a CPU limit is set (Silo applies one processor setting)');
    else processor.Weight = sharesToWeight(hc.CpuShares);
  }
  if (hc.Memory > 0 && hc.Memory < 6 * MiB) throw dockerInvalid('Minimum memory limit allowed is 6MB');

  const exposed = [...new Set([...Object.keys(image.config.ExposedPorts ?? {}), ...Object.keys(body.ExposedPorts ?? {})])];
  const ports = await portMappings(hc.PortBindings, !!hc.PublishAllPorts, exposed);
  const netName = networkOf(hc.NetworkMode);
  const endpoints: Record<string, any> = body.NetworkingConfig?.EndpointsConfig ?? {};
  const epc = endpoints[hc.NetworkMode ?? 'default'] ?? Object.values(endpoints)[0] ?? {};
  const networking: Networking = {
    ...(netName ? { Network: netName } : {}),
    ...(epc.IPAMConfig?.IPv4Address ? { IpAddress: epc.IPAMConfig.IPv4Address } : {}),
    ...(epc.Aliases?.length ? { Aliases: epc.Aliases.map(String) } : {}),
    ...(ports.mappings.length ? { PortMappings: ports.mappings } : {}),
  };
  if (netName === 'none' && ports.mappings.length) throw dockerInvalid('conflicting options: port publishing and the container type network mode');

  const restart = hc.RestartPolicy?.Name ?? 'no';
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(restart)) throw dockerInvalid(`invalid restart policy '${restart}'`);
  if (hc.AutoRemove && restart !== '' && restart !== 'no') throw dockerInvalid('can\'t create \'AutoRemove\' container with restart policy');

  const stopTimeout = body.StopTimeout === undefined || body.StopTimeout === null ? undefined : Number(body.StopTimeout);
  const req: CreateSystemRequest = {
    ...(name ? { Name: name } : {}),
    Image: String(body.Image),
    Document: {
      Isolation: 'process',
      Container: {
        ...(body.Hostname ? { GuestOs: { HostName: String(body.Hostname) } } : {}),
        MappedDirectories: mapped,
        ...(hc.Memory > 0 ? { Memory: { SizeInMB: hc.Memory / MiB } } : {}),
        ...(Object.keys(processor).length ? { Processor: processor } : {}),
        ...(hc.PidsLimit > 0 ? { Pids: { Limit: hc.PidsLimit } } : {}),
        ...(Object.keys(networking).length ? { Networking: networking } : {}),
      },
      Process: {
        ...(strs(body.Cmd) ? { CommandArgs: strs(body.Cmd) } : {}),
        // An explicit empty entrypoint (`--entrypoint ""`) clears the image's.
        ...(Array.isArray(body.Entrypoint) || typeof body.Entrypoint === 'string' ? { Entrypoint: strs(body.Entrypoint) ?? [] } : {}),
        ...(body.WorkingDir ? { WorkingDirectory: String(body.WorkingDir) } : {}),
        ...(envMap(body.Env) ? { Environment: envMap(body.Env) } : {}),
        ...(body.User ? { User: String(body.User) } : {}),
        EmulateConsole: !!body.Tty,
        CreateStdInPipe: !!body.OpenStdin,
        ...(Array.isArray(hc.ConsoleSize) && hc.ConsoleSize[0] > 0 ? { ConsoleSize: [hc.ConsoleSize[0], hc.ConsoleSize[1]] as [number, number] } : {}),
      },
      ...(body.StopSignal ? { StopSignal: String(body.StopSignal) } : {}),
      ...(stopTimeout !== undefined && stopTimeout >= 0 ? { StopTimeoutSeconds: stopTimeout } : {}),
      AutoRemove: !!hc.AutoRemove,
      ...(hc.Init ? { Init: true } : {}),
      ...(restart && restart !== 'no' ? { RestartPolicy: { Name: restart, MaximumRetryCount: hc.RestartPolicy?.MaximumRetryCount ?? 0 } } : {}),
      ...(body.Labels && Object.keys(body.Labels).length ? { Labels: body.Labels } : {}),
    },
  };
  const { HostConfig: _h, NetworkingConfig: _n, ...config } = body;
  const meta: DockerMeta = {
    Config: config,
    HostConfig: { ...hc, RestartPolicy: { Name: restart || 'no', MaximumRetryCount: hc.RestartPolicy?.MaximumRetryCount ?? 0 } },
    Networks: endpoints,
    Mounts: mounts,
  };
  return { req, meta, warnings };
}
