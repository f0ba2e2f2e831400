// Silo records in docker's shapes: container inspect and list summaries, with docker's State and Status strings.

import type { ComputeSystemRecord } from '../../compute/types.js';
import type { Services } from '../../host/services.js';
import type { ImageConfig } from '../../storage/types.js';
import { familiarName } from '../../storage/reference.js';
import type { DockerMeta } from './meta.js';
import { dockerNetworkName, humanDuration, unix, ZERO_TIME } from './util.js';

/** Docker's state word; a stopped system its restart policy is about to start again is "restarting", as dockerd says. */
export function dockerStatus(r: ComputeSystemRecord, restarting = false): 'created' | 'running' | 'paused' | 'exited' | 'restarting' {
  if (restarting && r.State === 'Stopped') return 'restarting';
  return ({ Created: 'created', Running: 'running', Paused: 'paused', Stopped: 'exited' } as const)[r.State];
}

/** "Up 5 minutes", "Up 2 seconds (Paused)", "Exited (0) 3 seconds ago", "Restarting (3) 1 second ago", "Created". */
export function statusText(r: ComputeSystemRecord, now = Date.now(), health?: string, restarting = false): string {
  if (r.State === 'Running' || r.State === 'Paused') {
    const up = `Up ${humanDuration(now - Date.parse(r.StartedAt ?? r.Created))}`;
    if (r.State === 'Paused') return `${up} (Paused)`;
    return health ? `${up} (${health === 'starting' ? 'health: starting' : health})` : up;
  }
  if (r.State === 'Stopped' && restarting) return `Restarting (${r.ExitCode ?? 0}) ${humanDuration(now - Date.parse(r.FinishedAt ?? r.Created))} ago`;
  if (r.State === 'Stopped') return `Exited (${r.ExitCode ?? 0}) ${humanDuration(now - Date.parse(r.FinishedAt ?? r.Created))} ago`;
  return 'Created';
}

/** Image name as the user typed it, in docker's familiar form when Silo stored it normalised. */
const imageName = (r: ComputeSystemRecord, meta?: DockerMeta) => String(meta?.Config.Image ?? familiarName(r.ImageName));

interface NetView {
  name: string;
  id: string;
  endpointId: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  aliases: string[];
  ip6: string;
  prefix6: number;
  gateway6: string;
}

function networksOf(svc: Services, r: ComputeSystemRecord): NetView[] {
  const out: NetView[] = [];
  for (const epId of r.Document.Container.Networking?.Endpoints ?? []) {
    try {
      const ep = svc.network.getEndpoint(epId);
      const net = svc.network.getNetwork(ep.NetworkId);
      out.push({
        // The names it resolves as there: the container's name (the endpoint's), then its aliases (its short id among them).
        name: dockerNetworkName(net), id: net.Id, endpointId: ep.Id, ip: ep.IpAddress, prefix: ep.PrefixLength, gateway: ep.GatewayAddress ?? '', mac: ep.MacAddress, aliases: [...new Set([...(ep.Name ? [ep.Name] : []), ...ep.Aliases])],
        ip6: ep.Ipv6Address ?? '', prefix6: ep.Ipv6PrefixLength ?? 0, gateway6: ep.Ipv6GatewayAddress ?? '',
      });
    } catch {
      /* endpoint gone meanwhile */
    }
  }
  // A system in the host's namespace is on docker's predefined "host" network.
  if (r.Document.Container.Namespaces?.Network?.Mode === 'host') out.push({ name: 'host', id: '', endpointId: '', ip: '', prefix: 0, gateway: '', mac: '', aliases: [], ip6: '', prefix6: 0, gateway6: '' });
  return out;
}

/** The host addresses a mapping listens on, as docker lists them: on every address, both families when dual-stack. */
const hostIps = (hostIp: string | undefined, dual: boolean) => (hostIp ? [hostIp] : dual ? ['0.0.0.0', '::'] : ['0.0.0.0']);

/** NetworkSettings.Ports: every exposed port, with its host bindings or null. */
function portsMap(r: ComputeSystemRecord, exposed: string[], dual: boolean): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const k of exposed) out[k] = null;
  if (r.State !== 'Running' && r.State !== 'Paused') return out;
  for (const m of r.Document.Container.Networking?.PortMappings ?? []) {
    const k = `${m.InternalPort}/${m.Protocol}`;
    for (const ip of hostIps(m.HostIp, dual)) (out[k] ??= []).push({ HostIp: ip, HostPort: String(m.ExternalPort) });
  }
  return out;
}

function endpointJson(n: NetView, cfg: Record<string, any> | undefined) {
  return {
    IPAMConfig: cfg?.IPAMConfig ?? null,
    Links: null,
    Aliases: cfg?.Aliases ?? null,
    MacAddress: n.mac,
    DriverOpts: null,
    GwPriority: 0,
    NetworkID: n.id,
    EndpointID: n.endpointId,
    Gateway: n.gateway,
    IPAddress: n.ip,
    IPPrefixLen: n.prefix,
    IPv6Gateway: n.gateway6,
    GlobalIPv6Address: n.ip6,
    GlobalIPv6PrefixLen: n.prefix6,
    DNSNames: n.aliases.length ? n.aliases : null,
  };
}

export function containerJson(svc: Services, r: ComputeSystemRecord, meta: DockerMeta | undefined, img: ImageConfig | undefined): Record<string, unknown> {
  const p = r.Document.Process;
  const entrypoint = p.Entrypoint !== undefined ? p.Entrypoint : (img?.Entrypoint ?? null);
  const cmd = p.CommandArgs?.length ? p.CommandArgs : p.Entrypoint !== undefined ? null : (img?.Cmd ?? null);
  const exposed = [...new Set([...Object.keys(img?.ExposedPorts ?? {}), ...Object.keys(meta?.Config.ExposedPorts ?? {})])];
  const nets = networksOf(svc, r);
  const primary = nets[0];
  const c = r.Document.Container;
  const restarting = svc.compute.isRestarting(r.Id);
  // dockerd counts a container in its restart back-off as running (State.Running and Restarting both true).
  const active = r.State === 'Running' || r.State === 'Paused';
  const hc = meta?.HostConfig ?? {};
  const mc = meta?.Config ?? {};
  return {
    Id: r.Id,
    Created: r.Created,
    Path: r.Init.Args[0] ?? '',
    Args: r.Init.Args.slice(1),
    State: {
      Status: dockerStatus(r, restarting),
      Running: active || restarting,
      Paused: r.State === 'Paused',
      Restarting: restarting,
      OOMKilled: !!r.OOMKilled,
      Dead: false,
      Pid: r.Pid ?? 0,
      ExitCode: r.ExitCode ?? 0,
      Error: r.Error ?? '',
      StartedAt: r.StartedAt ?? ZERO_TIME,
      FinishedAt: r.FinishedAt ?? ZERO_TIME,
      ...(svc.compute.healthOf(r.Id) ? { Health: svc.compute.healthOf(r.Id) } : {}),
    },
    Image: r.ImageId,
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: '',
    Name: `/${r.Name}`,
    RestartCount: r.RestartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      // What the client sent (Tmpfs, CapAdd, Dns, Ulimits...) as sent; what Silo models from its record.
      ...hc,
      Binds: hc.Binds ?? null,
      NetworkMode: hc.NetworkMode ?? 'bridge',
      PortBindings: hc.PortBindings ?? {},
      RestartPolicy: hc.RestartPolicy ?? { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: !!r.Document.AutoRemove,
      Isolation: hc.Isolation ?? '',
      Init: hc.Init ?? null,
      Memory: c.Memory?.SizeInMB ? Math.round(c.Memory.SizeInMB * 1024 * 1024) : 0,
      MemoryReservation: c.Memory?.ReservationInBytes ?? 0,
      NanoCpus: c.Processor?.Count ? Math.round(c.Processor.Count * 1e9) : 0,
      CpuShares: hc.CpuShares ?? 0,
      PidsLimit: c.Pids?.Limit ?? null,
      PublishAllPorts: !!hc.PublishAllPorts,
      ConsoleSize: p.ConsoleSize ?? [0, 0],
      Mounts: hc.Mounts ?? undefined,
      LogConfig: hc.LogConfig?.Type ? hc.LogConfig : { Type: 'json-file', Config: {} },
      Privileged: !!c.Security?.Privileged,
      ReadonlyRootfs: !!c.Security?.ReadOnlyRoot,
      ShmSize: c.ShmSizeInBytes ?? 67108864,
    },
    GraphDriver: { Name: 'overlay2', Data: null },
    Mounts: meta?.Mounts ?? (c.MappedDirectories ?? []).map((m) => ({ Type: 'bind', Source: m.HostPath, Destination: m.ContainerPath, Mode: '', RW: !m.ReadOnly, Propagation: 'rprivate' })),
    Config: {
      Hostname: c.GuestOs.HostName,
      Domainname: c.Sysctls?.['kernel.domainname'] ?? '',
      User: r.Init.User,
      AttachStdin: !!mc.AttachStdin,
      AttachStdout: !!mc.AttachStdout,
      AttachStderr: !!mc.AttachStderr,
      ExposedPorts: exposed.length ? Object.fromEntries(exposed.map((k) => [k, {}])) : undefined,
      Tty: r.Init.Tty,
      OpenStdin: r.Init.Stdin,
      StdinOnce: !!mc.StdinOnce,
      Env: r.Init.Env,
      Cmd: cmd,
      Image: imageName(r, meta),
      Volumes: img?.Volumes || mc.Volumes ? { ...(img?.Volumes ?? {}), ...(mc.Volumes ?? {}) } : null,
      WorkingDir: p.WorkingDirectory ?? img?.WorkingDir ?? '',
      Entrypoint: entrypoint,
      OnBuild: null,
      Labels: r.Document.Labels ?? {},
      ...(r.Document.StopSignal ? { StopSignal: r.Document.StopSignal } : {}),
      ...(r.Document.StopTimeoutSeconds !== undefined ? { StopTimeout: r.Document.StopTimeoutSeconds } : {}),
    },
    NetworkSettings: {
      Bridge: '',
      SandboxID: c.Networking?.Namespace ?? '',
      SandboxKey: c.Networking?.Namespace ? `/var/run/netns/${c.Networking.Namespace}` : '',
      Ports: portsMap(r, exposed, nets.some((n) => n.ip6)),
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: primary?.endpointId ?? '',
      Gateway: primary?.gateway ?? '',
      GlobalIPv6Address: primary?.ip6 ?? '',
      GlobalIPv6PrefixLen: primary?.prefix6 ?? 0,
      IPAddress: primary?.ip ?? '',
      IPPrefixLen: primary?.prefix ?? 0,
      IPv6Gateway: primary?.gateway6 ?? '',
      MacAddress: primary?.mac ?? '',
      Networks: Object.fromEntries(nets.map((n) => [n.name, endpointJson(n, meta?.Networks[n.name] ?? meta?.Networks.default)])),
    },
  };
}

/** One row of GET /containers/json. */
export function containerSummary(svc: Services, r: ComputeSystemRecord, meta: DockerMeta | undefined): Record<string, unknown> {
  const nets = networksOf(svc, r);
  const active = r.State === 'Running' || r.State === 'Paused';
  const ports = active
    ? (r.Document.Container.Networking?.PortMappings ?? []).flatMap((m) => hostIps(m.HostIp, nets.some((n) => n.ip6)).map((ip) => ({ IP: ip, PrivatePort: m.InternalPort, PublicPort: m.ExternalPort, Type: m.Protocol })))
    : [];
  return {
    Id: r.Id,
    Names: [`/${r.Name}`],
    Image: imageName(r, meta),
    ImageID: r.ImageId,
    // dockerd's own quoting: an argument with a space in single quotes, nothing escaped (`sh -c 'exit 3'`).
    Command: r.Init.Args.map((a, i) => (i > 0 && a.includes(' ') ? `'${a}'` : a)).join(' '),
    Created: unix(r.Created),
    Ports: ports,
    Labels: r.Document.Labels ?? {},
    State: dockerStatus(r, svc.compute.isRestarting(r.Id)),
    Status: statusText(r, Date.now(), svc.compute.healthOf(r.Id)?.Status, svc.compute.isRestarting(r.Id)),
    HostConfig: { NetworkMode: meta?.HostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: Object.fromEntries(nets.map((n) => [n.name, endpointJson(n, undefined)])) },
    Mounts: (meta?.Mounts ?? []).map((m) => ({ ...m })),
  };
}
