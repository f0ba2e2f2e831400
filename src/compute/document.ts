// A create request and its image become a full compute system document; every check that needs no kernel is here,
// before anything is made.

import { invalid } from '../common/errors.js';
import type { Image, ImageConfig } from '../storage/types.js';
import type { HealthCheck } from './spec/schema.js';
import { healthFromDocker } from './health.js';
import type { ComputeSystemDocument, CreateSystemRequest, Isolation } from './types.js';

export { checkIsolation, validateDocument } from './spec/validate.js';

export const DEFAULT_SCRATCH_BYTES = 10 * 1024 ** 3;
/** The init `Init: true` runs as PID 1: Debian's statically linked tini, bound read-only into the container. */
export const INIT_BINARY = '/usr/bin/tini-static';
export const INIT_PATH = '/sbin/docker-init';

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** `defaultIsolation`: the mode a request that names none gets (the host's first backend). */
export function buildDocument(id: string, req: CreateSystemRequest, image: Image, defaultIsolation: Isolation = 'process'): ComputeSystemDocument {
  const d = req.Document ?? {};
  const c = d.Container ?? {};
  return {
    Owner: d.Owner ?? 'silo',
    SchemaVersion: { Major: 2, Minor: 1 },
    Isolation: (d.Isolation ?? defaultIsolation) as Isolation, // any other value is refused by validateDocument
    Container: {
      GuestOs: { HostName: c.GuestOs?.HostName || id.slice(0, 12) },
      Storage: { Image: req.Image, ImageId: image.id, ScratchSizeInBytes: c.Storage?.ScratchSizeInBytes ?? DEFAULT_SCRATCH_BYTES, ...(c.Storage?.ScratchInMemory ? { ScratchInMemory: true } : {}) },
      MappedDirectories: c.MappedDirectories ?? [],
      Memory: c.Memory,
      Processor: c.Processor,
      Pids: c.Pids,
      Networking: c.Networking,
      ...pick(c, ['Tmpfs', 'Devices', 'BlockIO', 'ShmSizeInBytes', 'Ulimits', 'Sysctls', 'OomScoreAdj', 'CgroupParent', 'Namespaces', 'Security', 'Logging']),
    },
    Process: d.Process ?? {},
    StopSignal: d.StopSignal ?? image.config.StopSignal,
    StopTimeoutSeconds: d.StopTimeoutSeconds,
    AutoRemove: d.AutoRemove ?? false,
    RestartPolicy: d.RestartPolicy,
    HealthCheck: healthOf(d.HealthCheck, image.config.Healthcheck),
    Init: d.Init,
    Labels: { ...(image.config.Labels ?? {}), ...(d.Labels ?? {}) },
    ...(d.HostingSystemId ? { HostingSystemId: d.HostingSystemId } : {}),
    ...(d.VirtualMachine?.KernelPackage || d.VirtualMachine?.HostedMounts
      ? { VirtualMachine: { ...(d.VirtualMachine.KernelPackage ? { KernelPackage: d.VirtualMachine.KernelPackage } : {}), ...(d.VirtualMachine.HostedMounts ? { HostedMounts: true } : {}) } }
      : {}),
  };
}

/** HCS Modify on a document: memory, processor and pids limits, or docker's restart policy. Pure; validate after. */
export function modifiedDocument(doc: ComputeSystemDocument, req: { ResourcePath: string; Settings: unknown }): ComputeSystemDocument {
  const s = req.Settings as Record<string, unknown> | number;
  const num = (k: string) => (typeof s === 'number' ? s : Number((s as Record<string, unknown>)?.[k]));
  const c = { ...doc.Container };
  switch (req.ResourcePath) {
    case 'Container/Memory/SizeInMB':
      return { ...doc, Container: { ...c, Memory: { ...c.Memory, SizeInMB: num('SizeInMB') } } };
    case 'Container/Memory/ReservationInBytes':
      return { ...doc, Container: { ...c, Memory: { ...c.Memory, ReservationInBytes: num('ReservationInBytes') } } };
    case 'Container/Memory': {
      // The limit and the reservation at once: each is checked against the other's new value.
      const m = (typeof s === 'object' && s !== null ? s : {}) as { SizeInMB?: unknown; ReservationInBytes?: unknown };
      const upd = { ...(m.SizeInMB !== undefined ? { SizeInMB: Number(m.SizeInMB) } : {}), ...(m.ReservationInBytes !== undefined ? { ReservationInBytes: Number(m.ReservationInBytes) } : {}) };
      return { ...doc, Container: { ...c, Memory: { ...c.Memory, ...upd } } };
    }
    case 'Container/Processor':
      return { ...doc, Container: { ...c, Processor: s as ComputeSystemDocument['Container']['Processor'] } };
    case 'Container/Pids':
      return { ...doc, Container: { ...c, Pids: { Limit: num('Limit') } } };
    case 'RestartPolicy':
      return { ...doc, RestartPolicy: s as unknown as ComputeSystemDocument['RestartPolicy'] };
    default:
      throw invalid(`unsupported ResourcePath ${JSON.stringify(req.ResourcePath)}: use Container/Memory, Container/Memory/SizeInMB, Container/Memory/ReservationInBytes, Container/Processor, Container/Pids or RestartPolicy`);
  }
}

/** The system's health check: its own, else the image's; NONE is none. */
function healthOf(own: HealthCheck | undefined, img: ImageConfig['Healthcheck']): HealthCheck | undefined {
  const hc = own ?? healthFromDocker(img);
  return hc && hc.Test[0] !== 'NONE' ? hc : undefined;
}
