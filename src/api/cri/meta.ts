// What the CRI knows of a pod sandbox or container beyond the compute system itself (its CRI metadata, labels,
// annotations, log path, namespace options), kept in the system's labels. The compute service writes the record
// atomically and restores it after a restart, so the CRI door keeps no state of its own (as dockershim kept its
// metadata in docker labels).

import { createHash } from 'node:crypto';
import type { ComputeSystemRecord } from '../../compute/types.js';

export const CRI_OWNER = 'silo-cri';
const META = 'io.silo.cri';
const SANDBOX = 'io.silo.cri.sandbox';

export type NsMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface SandboxMeta {
  kind: 'sandbox';
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logDirectory: string;
  runtimeHandler: string;
  hostname: string;
  namespaces: { network: NsMode; pid: NsMode; ipc: NsMode };
  cgroupParent?: string;
  /** When the sandbox was stopped by StopPodSandbox: it stays NOTREADY even if something restarts its infra. */
  stopped?: boolean;
}

export interface ContainerMeta {
  kind: 'container';
  sandboxId: string;
  metadata: { name: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  image: { image: string; annotations: Record<string, string>; user_specified_image?: string; runtime_handler?: string };
  /** Absolute path of the CRI log (the sandbox's log_directory joined with the container's log_path), or ''. */
  logPath: string;
  /** As the kubelet asked for them, for ContainerStatus. */
  mounts: unknown[];
  resources?: object;
}

export type CriMeta = SandboxMeta | ContainerMeta;

export function metaLabels(m: CriMeta): Record<string, string> {
  return { [META]: JSON.stringify(m), ...(m.kind === 'container' ? { [SANDBOX]: m.sandboxId } : {}) };
}

/** The CRI metadata of a system this door made; undefined for systems of other front doors. */
export function metaOf(rec: ComputeSystemRecord): CriMeta | undefined {
  if (rec.Document.Owner !== CRI_OWNER) return undefined;
  const raw = rec.Document.Labels?.[META];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as CriMeta;
  } catch {
    return undefined;
  }
}

/** Every label of `selector` is on `labels` with the same value (the CRI's label_selector). */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector ?? {})) if (labels[k] !== v) return false;
  return true;
}

/** Nanoseconds since the epoch of an ISO time (0 when unset), as the CRI's int64 timestamps. */
export function nanos(iso: string | undefined): number {
  if (!iso) return 0;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : ms * 1e6;
}

const MAX_NAME = 128;

/** A compute system name from CRI metadata, unique per attempt as the kubelet expects (k8s_<what>_<pod>_<ns>_<uid>_<n>);
 *  past the 128 characters a name may have, the start is kept and a digest of the whole keeps it unique. */
export function systemName(parts: string[]): string {
  const full = ['k8s', ...parts].map((p) => p.replace(/[^a-zA-Z0-9_.-]/g, '-')).join('_');
  if (full.length <= MAX_NAME) return full;
  const digest = createHash('sha256').update(full).digest('hex').slice(0, 16);
  return `${full.slice(0, MAX_NAME - digest.length - 1)}_${digest}`;
}
