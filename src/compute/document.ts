// A create request and its image become a full compute system document; every check that needs no kernel is here,
// before anything is made.

import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { invalid } from '../common/errors.js';
import type { Image } from '../storage/types.js';
import { resourcesOf } from './resolve.js';
import { normalizeSignal } from './signals.js';
import type { ComputeSystemDocument, CreateSystemRequest, Isolation } from './types.js';

export const DEFAULT_SCRATCH_BYTES = 10 * 1024 ** 3;
/** The init `Init: true` runs as PID 1: Debian's statically linked tini, bound read-only into the container. */
export const INIT_BINARY = '/usr/bin/tini-static';
export const INIT_PATH = '/sbin/docker-init';
const MIN_SCRATCH_BYTES = 16 * 1024 * 1024;

/** `defaultIsolation`: the mode a request that names none gets (the host's first backend). */
export function buildDocument(id: string, req: CreateSystemRequest, image: Image, defaultIsolation: Isolation = 'process'): ComputeSystemDocument {
  const d = req.Document ?? {};
  const c = d.Container ?? {};
  return {
    Owner: d.Owner ?? 'silo',
    SchemaVersion: { Major: 2, Minor: 1 },
    Isolation: d.Isolation ?? defaultIsolation,
    Container: {
      GuestOs: { HostName: c.GuestOs?.HostName || id.slice(0, 12) },
      Storage: { Image: req.Image, ImageId: image.id, ScratchSizeInBytes: c.Storage?.ScratchSizeInBytes ?? DEFAULT_SCRATCH_BYTES },
      MappedDirectories: c.MappedDirectories ?? [],
      Memory: c.Memory,
      Processor: c.Processor,
      Pids: c.Pids,
      Networking: c.Networking,
    },
    Process: d.Process ?? {},
    StopSignal: d.StopSignal ?? image.config.StopSignal,
    StopTimeoutSeconds: d.StopTimeoutSeconds,
    AutoRemove: d.AutoRemove ?? false,
    RestartPolicy: d.RestartPolicy,
    Init: d.Init,
    Labels: { ...(image.config.Labels ?? {}), ...(d.Labels ?? {}) },
  };
}

/** `isolations`: the modes this daemon has a backend for. */
export async function validateDocument(doc: ComputeSystemDocument, isolations: readonly string[]): Promise<void> {
  checkIsolation(doc.Isolation, isolations);
  if (doc.StopSignal) normalizeSignal(doc.StopSignal);
  resourcesOf(doc.Container);
  const rp = doc.RestartPolicy;
  if (rp && !['no', 'always', 'unless-stopped', 'on-failure'].includes(rp.Name)) throw invalid(`invalid restart policy ${JSON.stringify(rp.Name)}: use no, always, unless-stopped or on-failure`);
  if (rp && rp.Name !== 'no' && doc.AutoRemove) throw invalid('a container with a restart policy cannot be removed automatically (--rm)');
  const scratch = doc.Container.Storage.ScratchSizeInBytes!;
  if (!Number.isInteger(scratch) || scratch < MIN_SCRATCH_BYTES) throw invalid('scratch size must be at least 16MB');
  if (doc.Init) {
    try {
      await stat(INIT_BINARY);
    } catch {
      throw invalid(`an init process needs ${INIT_BINARY} on the host (Debian package tini)`);
    }
  }
  for (const m of doc.Container.MappedDirectories ?? []) {
    if (!isAbsolute(m.HostPath)) throw invalid(`invalid mount: host path ${JSON.stringify(m.HostPath)} must be absolute`);
    if (!isAbsolute(m.ContainerPath) || m.ContainerPath === '/') throw invalid(`invalid mount: container path ${JSON.stringify(m.ContainerPath)} must be absolute and not /`);
    try {
      await stat(m.HostPath);
    } catch {
      throw invalid(`invalid mount: host path ${m.HostPath} does not exist`);
    }
  }
}

export function checkIsolation(isolation: unknown, isolations: readonly string[]): void {
  if (typeof isolation === 'string' && isolations.includes(isolation)) return;
  const use = isolations.map((i) => JSON.stringify(i)).join(' or ');
  if (isolation === 'vm' || isolation === 'process') throw invalid(`isolation "${isolation}" is not available on this host; use ${use}`);
  throw invalid(`unknown isolation ${JSON.stringify(isolation)}: use ${use}`);
}

/** HCS Modify on a document: memory, processor and pids limits, or docker's restart policy. Pure; validate after. */
export function modifiedDocument(doc: ComputeSystemDocument, req: { ResourcePath: string; Settings: unknown }): ComputeSystemDocument {
  const s = req.Settings as Record<string, unknown> | number;
  const num = (k: string) => (typeof s === 'number' ? s : Number((s as Record<string, unknown>)?.[k]));
  const c = { ...doc.Container };
  switch (req.ResourcePath) {
    case 'Container/Memory/SizeInMB':
      return { ...doc, Container: { ...c, Memory: { SizeInMB: num('SizeInMB') } } };
    case 'Container/Processor':
      return { ...doc, Container: { ...c, Processor: s as ComputeSystemDocument['Container']['Processor'] } };
    case 'Container/Pids':
      return { ...doc, Container: { ...c, Pids: { Limit: num('Limit') } } };
    case 'RestartPolicy':
      return { ...doc, RestartPolicy: s as unknown as ComputeSystemDocument['RestartPolicy'] };
    default:
      throw invalid(`unsupported ResourcePath ${JSON.stringify(req.ResourcePath)}: use Container/Memory/SizeInMB, Container/Processor, Container/Pids or RestartPolicy`);
  }
}
