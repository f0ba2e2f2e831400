// GetContainerEvents: the kubelet's evented PLEG reads a stream of container (and sandbox) lifecycle events, each with
// the pod's sandbox status and its containers' statuses as they are right after the change, so it can update its pod
// cache without relisting. The events come from the daemon's event bus (src/common/events.ts): compute publishes after
// it has persisted the change, so the statuses read here already show it.

import type { ServerWritableStream } from '@grpc/grpc-js';
import type { SiloEvent } from '../../common/events.js';
import type { Services } from '../../host/services.js';
import type { Containers } from './containers.js';
import { metaOf } from './meta.js';
import type { Sandboxes } from './sandboxes.js';

export type ContainerEventType = 'CONTAINER_CREATED_EVENT' | 'CONTAINER_STARTED_EVENT' | 'CONTAINER_STOPPED_EVENT' | 'CONTAINER_DELETED_EVENT';

/** The CRI event type of a compute system event; undefined for the events the CRI has no type for. */
export function criEventType(action: string): ContainerEventType | undefined {
  switch (action) {
    case 'create':
      return 'CONTAINER_CREATED_EVENT';
    case 'start':
    case 'restart':
      return 'CONTAINER_STARTED_EVENT';
    case 'die':
      return 'CONTAINER_STOPPED_EVENT';
    case 'destroy':
      return 'CONTAINER_DELETED_EVENT';
  }
  return undefined;
}

interface Known {
  kind: 'sandbox' | 'container';
  sandboxId: string;
  /** The sandbox's last status, for the event of its own removal (its record is gone by then). */
  lastStatus?: object;
}

/** Serve one GetContainerEvents call until the client cancels it (or the server shuts down). */
export async function containerEvents(s: Services, sandboxes: Sandboxes, containers: Containers, call: ServerWritableStream<unknown, unknown>): Promise<void> {
  // What each CRI system is, kept from its creation on, so its removal (after which its record is gone) can still
  // be told apart and put in its pod.
  const known = new Map<string, Known>();
  const learn = (id: string): Known | undefined => {
    let k = known.get(id);
    if (k) return k;
    const rec = s.compute.list(true).find((r) => r.Id === id);
    const meta = rec && metaOf(rec);
    if (!meta) return undefined;
    k = meta.kind === 'sandbox' ? { kind: 'sandbox', sandboxId: id } : { kind: 'container', sandboxId: meta.sandboxId };
    known.set(id, k);
    return k;
  };
  for (const rec of s.compute.list(true)) learn(rec.Id);

  const podStatus = (sandboxId: string): object | undefined => {
    const sb = sandboxes.find(sandboxId);
    const k = known.get(sandboxId);
    if (!sb) return k?.lastStatus;
    const st = sandboxes.status(sb.rec, sb.meta);
    if (k) k.lastStatus = st;
    return st;
  };

  const onEvent = (ev: SiloEvent) => {
    if (ev.Type !== 'system') return;
    const type = criEventType(ev.Action);
    if (!type) return;
    const k = learn(ev.Id);
    if (!k) return;
    try {
      const pod_sandbox_status = podStatus(k.sandboxId) ?? null;
      const containers_statuses = containers.all().filter((c) => c.meta.sandboxId === k.sandboxId).map((c) => containers.statusOf(c));
      call.write({ container_id: ev.Id, container_event_type: type, created_at: ev.TimeNano, pod_sandbox_status, containers_statuses });
    } finally {
      if (type === 'CONTAINER_DELETED_EVENT') known.delete(ev.Id);
    }
  };

  const off = s.events.subscribe(onEvent);
  await new Promise<void>((resolve) => {
    call.once('cancelled', resolve);
    call.once('close', resolve);
    call.once('error', resolve);
  });
  off();
}
