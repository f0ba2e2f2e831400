// The CRI door assembled: RuntimeService and ImageService handlers over the services, served on a unix socket.

import { invalid, SiloError } from '../../common/errors.js';
import type { Services } from '../../host/services.js';
import { Containers } from './containers.js';
import { imageHandlers, type ImageOptions } from './images.js';
import { runtimeHandlers } from './runtime.js';
import { Sandboxes } from './sandboxes.js';
import { criOnConnections, serveCri, type CriServer, type Handler, type StreamHandler } from './server.js';
import { containerEvents } from './events.js';
import { startStreaming, type Streaming } from './streaming.js';

export interface CriOptions extends ImageOptions {
  socketPath: string;
  /** The streaming server's TCP port on 127.0.0.1 (0: any free one). */
  streamingPort?: number;
  streaming?: Streaming;
}

export function criHandlers(s: Services, o: Omit<CriOptions, 'socketPath'>): { runtime: Record<string, Handler | StreamHandler>; image: Record<string, Handler> } {
  const sandboxes = new Sandboxes(s);
  const containers = new Containers(s, sandboxes, o.storageRoot);
  const noStreaming = async () => {
    throw new SiloError('Unimplemented', 'SILO_NO_STREAMING', 'streaming is not available');
  };
  const runtime: Record<string, Handler> = {
    ...runtimeHandlers(s),
    RunPodSandbox: async (r) => ({ pod_sandbox_id: await sandboxes.run(r.config, r.runtime_handler ?? '') }),
    StopPodSandbox: async (r) => {
      const sb = sandboxes.find(r.pod_sandbox_id);
      if (sb) await sandboxes.stop(sb.rec.Id, containers.inSandbox(sb.rec.Id));
      return {};
    },
    RemovePodSandbox: async (r) => {
      const sb = sandboxes.find(r.pod_sandbox_id);
      if (sb) await sandboxes.remove(sb.rec.Id, containers.inSandbox(sb.rec.Id));
      return {};
    },
    PodSandboxStatus: async (r) => {
      const sb = sandboxes.get(r.pod_sandbox_id);
      const info = r.verbose ? { info: JSON.stringify({ pid: sb.rec.Pid ?? 0, name: sb.rec.Name }) } : {};
      // The containers' statuses too: with the evented PLEG the kubelet takes them from here rather than listing.
      const containers_statuses = containers.all().filter((c) => c.meta.sandboxId === sb.rec.Id).map((c) => containers.statusOf(c));
      return { status: sandboxes.status(sb.rec, sb.meta), info, containers_statuses, timestamp: Date.now() * 1e6 };
    },
    ListPodSandbox: async (r) => ({ items: sandboxes.list(r.filter ?? undefined) }),
    CreateContainer: async (r) => ({ container_id: await containers.create(r) }),
    StartContainer: async (r) => (await containers.start(r.container_id), {}),
    StopContainer: async (r) => (await containers.stop(r.container_id, r.timeout ?? 0), {}),
    RemoveContainer: async (r) => (await containers.remove(r.container_id), {}),
    ListContainers: async (r) => ({ containers: containers.list(r.filter ?? undefined) }),
    ContainerStatus: async (r) => containers.status(r.container_id, r.verbose),
    UpdateContainerResources: async (r) => (await containers.updateResources(r.container_id, r.linux), {}),
    ReopenContainerLog: async (r) => (await containers.reopenLog(r.container_id), {}),
    ExecSync: async (r) => containers.execSync(r.container_id, r.cmd ?? [], r.timeout ?? 0),
    Exec: o.streaming ? async (r) => ({ url: o.streaming!.exec(containers.get(r.container_id).rec, r) }) : noStreaming,
    Attach: o.streaming ? async (r) => ({ url: o.streaming!.attach(containers.get(r.container_id).rec, r) }) : noStreaming,
    PortForward: o.streaming
      ? async (r) => {
          const sb = sandboxes.get(r.pod_sandbox_id);
          // The pod's localhost is the guest's, which the host's namespace cannot reach.
          if (sb.meta.runtimeHandler === 'vm') throw invalid('port-forward into a pod of runtime handler "vm" is not supported yet: its localhost is inside its utility VM');
          return { url: o.streaming!.portForward(sb.rec, r) };
        }
      : noStreaming,
    ContainerStats: async (r) => ({ stats: await containers.statsOf(r.container_id) }),
    ListContainerStats: async (r) => ({ stats: await containers.listStats(r.filter ?? undefined) }),
    PodSandboxStats: async (r) => ({ stats: await podStats(sandboxes.get(r.pod_sandbox_id)) }),
    ListPodSandboxStats: async (r) => ({
      stats: await Promise.all(
        sandboxes
          .all()
          .filter((x) => (!r.filter?.id || x.rec.Id.startsWith(r.filter.id)) && Object.entries(r.filter?.label_selector ?? {}).every(([k, v]) => x.meta.labels[k] === v))
          .map(podStats),
      ),
    }),
    ListMetricDescriptors: async () => ({ descriptors: [] }),
    ListPodSandboxMetrics: async () => ({ pod_metrics: [] }),
  };

  async function podStats(sb: ReturnType<Sandboxes['get']>) {
    const samples = await containers.listSamples({ pod_sandbox_id: sb.rec.Id });
    const cs = samples.map((x) => x.stats);
    const now = Date.now() * 1e6;
    const sum = (f: (c: (typeof cs)[number]) => number) => cs.reduce((a, c) => a + f(c), 0);
    // The sandbox's own system holds the pod's endpoint; its processes and its containers' make the pod's count.
    const own = await s.compute.properties(sb.rec.Id, ['Statistics']).then((p) => p.Statistics, () => undefined);
    const theirs = samples.map((x) => x.st);
    const ifaces = Object.entries(own?.network ?? {}).map(([name, e]) => ({
      name, rx_bytes: { value: e.BytesReceived }, rx_errors: { value: e.ErrorsIncoming }, tx_bytes: { value: e.BytesSent }, tx_errors: { value: e.ErrorsOutgoing },
    }));
    return {
      attributes: { id: sb.rec.Id, metadata: sb.meta.metadata, labels: sb.meta.labels, annotations: sb.meta.annotations },
      linux: {
        cpu: { timestamp: now, usage_core_nano_seconds: { value: sum((c) => c.cpu.usage_core_nano_seconds.value) } },
        memory: { timestamp: now, working_set_bytes: { value: sum((c) => c.memory.working_set_bytes.value) }, usage_bytes: { value: sum((c) => c.memory.usage_bytes.value) } },
        ...(ifaces.length ? { network: { timestamp: now, default_interface: ifaces.find((i) => i.name === 'eth0') ?? ifaces[0], interfaces: ifaces } } : {}),
        process: { timestamp: now, process_count: { value: [own, ...theirs].reduce((a, st) => a + (st?.pids.current ?? 0), 0) } },
        containers: cs,
      },
    };
  }

  const streams: Record<string, StreamHandler> = {
    GetContainerEvents: async (_r, call) => containerEvents(s, sandboxes, containers, call),
  };
  return { runtime: { ...runtime, ...streams }, image: imageHandlers(s, o) };
}

export async function startCri(s: Services, o: CriOptions): Promise<CriServer> {
  const sandboxes = new Sandboxes(s);
  const streaming = await startStreaming(s, { address: '127.0.0.1', port: o.streamingPort ?? 0, podNetns: (rec) => sandboxes.netns(rec) });
  const grpc = await serveCri(o.socketPath, criHandlers(s, { ...o, streaming }), s.log);
  return { socketPath: grpc.socketPath, close: () => Promise.all([grpc.close(), streaming.close()]).then(() => {}) };
}

/** The CRI on connections the daemon's own listener accepted: `accept` takes each one (see host/lazy-door.ts). */
export async function criDoor(s: Services, o: Omit<CriOptions, 'socketPath'>): Promise<{ accept(socket: import('node:stream').Duplex): void; close(): Promise<void> }> {
  const sandboxes = new Sandboxes(s);
  const streaming = await startStreaming(s, { address: '127.0.0.1', port: o.streamingPort ?? 0, podNetns: (rec) => sandboxes.netns(rec) });
  const grpc = criOnConnections(criHandlers(s, { ...o, streaming }), s.log);
  return { accept: grpc.accept, close: () => Promise.all([grpc.close(), streaming.close()]).then(() => {}) };
}
