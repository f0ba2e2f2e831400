// Negotiation and the daemon as a whole: _ping, version, info, events, system df.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { VERSION } from '../../host/version.js';
import type { Ctx } from './ctx.js';
import { EVENT_FILTERS, eventMatches, toDockerEvent } from './events.js';
import { streamEvents } from '../event-stream.js';
import { imageSummary } from './images-view.js';
import { containerSummary } from './inspect.js';
import { all, first, filters, sendJson, type Query } from './util.js';
import { dockerInvalid } from './errors.js';
import { diskUsage } from '../disk-usage.js';

export const API_VERSION = '1.50';
const goArch = () => ({ x64: 'amd64', arm64: 'arm64', ia32: '386' } as Record<string, string>)[arch()] ?? arch();
export const MIN_API_VERSION = '1.24';

function pingHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('Api-Version', API_VERSION)
    .header('Ostype', 'linux')
    .header('Docker-Experimental', 'false')
    .header('Builder-Version', '1')
    .header('Swarm', 'inactive')
    .header('Cache-Control', 'no-cache, no-store, must-revalidate')
    .header('Pragma', 'no-cache');
}

/** Time arg of /events: unix seconds (with fraction) or RFC3339 → ms. */
const ms = (v: string | undefined) => (v === undefined || v === '' ? undefined : /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v));

export function systemRoutes(app: FastifyInstance, x: Ctx): void {
  const svc = x.svc;
  app.head('/_ping', async (_req, reply) => pingHeaders(reply).header('Content-Type', 'text/plain; charset=utf-8').status(200).send());
  app.get('/_ping', async (_req, reply) => pingHeaders(reply).header('Content-Type', 'text/plain; charset=utf-8').status(200).send('OK'));

  app.get('/version', async (_req, reply) => {
    const v = svc.version();
    const details = { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: 'silo', GoVersion: `node${process.versions.node}`, Os: 'linux', Arch: goArch(), KernelVersion: release(), Experimental: 'false', BuildTime: '' };
    return sendJson(reply, 200, {
      Platform: { Name: 'Silo' },
      Components: [
        { Name: 'Engine', Version: VERSION, Details: details },
        { Name: 'runc', Version: String(v.Runc ?? ''), Details: { GitCommit: '' } },
        { Name: 'conmon', Version: String(v.Conmon ?? ''), Details: { GitCommit: '' } },
      ],
      Version: VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: 'silo',
      GoVersion: `node${process.versions.node}`,
      Os: 'linux',
      Arch: details.Arch,
      KernelVersion: release(),
      BuildTime: '',
    });
  });

  app.get('/info', async (_req, reply) => {
    const i = await svc.info();
    const list = svc.compute.list(true);
    return sendJson(reply, 200, {
      ID: 'silo',
      Containers: list.length,
      ContainersRunning: list.filter((r) => r.State === 'Running').length,
      ContainersPaused: list.filter((r) => r.State === 'Paused').length,
      ContainersStopped: list.filter((r) => r.State === 'Stopped' || r.State === 'Created').length,
      Images: i.Images,
      Driver: 'overlay2',
      DriverStatus: [['Backing Filesystem', 'ext4 scratch on loop devices']],
      Plugins: { Volume: ['local'], Network: ['nat', 'internal', 'l2bridge'], Authorization: null, Log: ['silo'] },
      MemoryLimit: true,
      SwapLimit: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      PidsLimit: true,
      OomKillDisable: false,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'silo',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: String(i.CgroupVersion ?? '1'),
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: 'Silo',
      OSVersion: '',
      OSType: 'linux',
      Architecture: ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[arch()] ?? arch(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: [], Mirrors: [] },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      DockerRootDir: x.stateDir,
      Name: hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: VERSION,
      Runtimes: { runc: { path: 'runc' } },
      DefaultRuntime: 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: 'default',
      InitBinary: '',
      SecurityOptions: ['name=seccomp,profile=builtin'],
      Warnings: [],
    });
  });

  app.get<{ Querystring: Query }>('/events', async (req, reply) => {
    const f = filters(req.query, EVENT_FILTERS);
    const since = ms(first(req.query.since));
    const until = ms(first(req.query.until));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    streamEvents(res, svc.events, { since, until }, (e) => {
      const ev = toDockerEvent(svc, e);
      return ev && eventMatches(ev, f) ? JSON.stringify(ev) + '\n' : undefined;
    });
  });

  app.get<{ Querystring: Query }>('/system/df', async (req, reply) => {
    const types = all(req.query.type);
    for (const t of types) if (!['container', 'image', 'volume', 'build-cache'].includes(t)) throw dockerInvalid(`invalid type: ${t}`);
    const want = (t: string) => types.length === 0 || types.includes(t);
    const u = await diskUsage(svc);
    return sendJson(reply, 200, {
      ...(want('image')
        ? {
            LayersSize: u.layersSize,
            // Each image's disk use (its layers and its blobs), so that LayersSize less what in-use images hold is
            // what the CLI's RECLAIMABLE says: what removing the unused ones would give back.
            Images: u.images.map((i) => ({ ...imageSummary(i.image), Size: i.diskSize, SharedSize: i.sharedSize, Containers: i.containers })),
          }
        : {}),
      ...(want('container') ? { Containers: u.containers.map((c) => ({ ...containerSummary(svc, c.rec, x.meta.get(c.rec.Id)), SizeRw: c.sizeRw, SizeRootFs: c.sizeRootFs })) } : {}),
      ...(want('volume') ? { Volumes: u.volumes.map((v) => ({ ...v.volume, UsageData: { Size: v.size, RefCount: v.refCount } })) } : {}),
      // The classic builder's cache is its step images, which Images counts.
      ...(want('build-cache') ? { BuildCache: [] } : {}),
    });
  });
}
