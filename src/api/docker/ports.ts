// Published ports: docker's PortBindings / PublishAllPorts → Silo's PortMappings. A host port the client left open
// (`-p 80`, `-P`) is asked as 0: the network service picks it, and the container's record shows the one it got.

import type { Networking } from '../../compute/types.js';
import { dockerInvalid } from './errors.js';

export type PortBindings = Record<string, { HostIp?: string | null; HostPort?: string | null }[] | null>;
type Mapping = NonNullable<Networking['PortMappings']>[number];

function splitPort(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(key);
  if (!m) throw dockerInvalid(`invalid port specification: "${key}"`);
  const proto = (m[2] ?? 'tcp').toLowerCase();
  if (proto === 'sctp') throw dockerInvalid('sctp ports are not supported by Silo');
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw dockerInvalid(`invalid port specification: "${key}"`);
  return { port, proto: proto as 'tcp' | 'udp' };
}

/** The mappings to ask the network service for. */
export function portMappings(bindings: PortBindings | undefined, publishAll: boolean, exposed: string[]): { mappings: Mapping[] } {
  const mappings: Mapping[] = [];
  const want: [string, { HostIp?: string | null; HostPort?: string | null }[]][] = Object.entries(bindings ?? {}).map(([k, v]) => [k, v ?? [{}]]);
  if (publishAll) for (const k of exposed) if (!(k in (bindings ?? {}))) want.push([k, [{}]]);
  for (const [key, list] of want) {
    const { port, proto } = splitPort(key);
    for (const b of list.length ? list : [{}]) {
      // An IPv6 host address ([::], or one of the host's) is for a dual-stack network: the network service refuses it
      // on an IPv4-only one, and on ::1, saying why.
      const hostIp = b.HostIp || undefined;
      const hp = b.HostPort ?? '';
      let ext: number;
      // Left open or 0: the network service picks it (dockerd does the same for both).
      if (hp === '') ext = 0;
      else if (/^\d+$/.test(hp)) ext = Number(hp);
      else if (/^\d+-\d+$/.test(hp)) ext = Number(hp.split('-')[0]);
      else throw dockerInvalid(`invalid host port: "${hp}"`);
      if (ext > 65535) throw dockerInvalid(`invalid host port: "${hp}"`);
      mappings.push({ Protocol: proto, InternalPort: port, ExternalPort: ext, ...(hostIp ? { HostIp: hostIp } : {}) });
    }
  }
  return { mappings };
}
