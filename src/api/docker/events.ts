// Silo's event bus in docker's event shape: Type container/image/network/volume, Action, Actor{ID, Attributes},
// plus the legacy status/id/from fields the CLI still prints.

import type { SiloEvent } from '../../common/events.js';
import type { Services } from '../../host/services.js';
import { dockerNetworkName } from './util.js';

export interface DockerEvent {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

/** A network's name and driver as docker names them (Silo's default network nat is docker's bridge). */
function networkAttrs(name: string | undefined, type: string | undefined): Record<string, string> {
  return { ...(name ? { name: dockerNetworkName({ Name: name }) } : {}), ...(type ? { type: type === 'l2bridge' ? 'l2bridge' : 'bridge' } : {}) };
}

export function toDockerEvent(svc: Services, e: SiloEvent): DockerEvent | undefined {
  if (e.Type === 'daemon') return undefined;
  let attrs: Record<string, string> = { ...e.Attributes };
  let type: string = e.Type === 'system' ? 'container' : e.Type;
  let id = e.Id;
  const action = e.Action;
  if (type === 'container') {
    try {
      const r = svc.compute.get(e.Id);
      attrs.image ??= r.ImageName;
      for (const [k, v] of Object.entries(r.Document.Labels ?? {})) attrs[k] ??= v;
    } catch {
      /* removed: the event's own attributes are all there is */
    }
    if (action === 'connect' || action === 'disconnect') {
      // dockerd's network event: the network is the actor; the container and the network's name and driver are its
      // attributes.
      type = 'network';
      id = e.Attributes.network ?? e.Id;
      attrs = { container: e.Id, ...networkAttrs(e.Attributes.networkName, e.Attributes.networkType) };
    }
  }
  if (e.Type === 'network') attrs = networkAttrs(e.Attributes.name, e.Attributes.type);
  const out: DockerEvent = {
    Type: type,
    Action: action,
    Actor: { ID: id, Attributes: attrs },
    scope: 'local',
    time: Math.floor(e.TimeNano / 1e9),
    timeNano: e.TimeNano,
  };
  if (type === 'container') Object.assign(out, { status: action, id, from: attrs.image ?? '' });
  return out;
}

/** Every filter key dockerd's events accept; Silo sends no swarm, plugin or daemon events, so those match nothing. */
export const EVENT_FILTERS = ['config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume'];

/** docker's event filters: each key given must match (any of its values); the swarm's keys never do here. */
export function eventMatches(ev: DockerEvent, f: Map<string, string[]>): boolean {
  const a = ev.Actor.Attributes;
  const any = (k: string, test: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(test);
  const named = (type: string) => (v: string) => ev.Type === type && (ev.Actor.ID.startsWith(v) || a.name === v);
  return (
    any('type', (v) => v === ev.Type) &&
    any('event', (v) => v === ev.Action || ev.Action.startsWith(v + ':')) &&
    any('container', named('container')) &&
    any('image', (v) => a.image === v || a.name === v || ev.Actor.ID === v) &&
    any('network', named('network')) &&
    any('volume', named('volume')) &&
    any('scope', (v) => v === ev.scope) &&
    ['config', 'daemon', 'node', 'plugin', 'secret', 'service'].every((k) => !f.has(k)) &&
    any('label', (v) => {
      const i = v.indexOf('=');
      return i < 0 ? v in a : a[v.slice(0, i)] === v.slice(i + 1);
    })
  );
}
