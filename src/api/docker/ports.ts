// Published ports: docker's PortBindings / PublishAllPorts → Silo's PortMappings, picking free host ports where the
// client left them open (`-p 80`, `-P`) by asking the kernel for an ephemeral one.

import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Networking } from '../../compute/types.js';
import { dockerInvalid } from './errors.js';

export type PortBindings = Record<string, { HostIp?: string; HostPort?: string }[] | null>;
type Mapping = NonNullable<Networking['PortMappings']>[number];

function freePort(proto: 'tcp' | 'udp', hostIp?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (proto === 'udp') {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, hostIp || '0.0.0.0', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, hostIp || '0.0.0.0', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

function splitPort(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(key);
  if (!m) throw dockerInvalid(`invalid port specification: "${key}"`);
  const proto = (m[2] ?? 'tcp').toLowerCase();
  if (proto === 'sctp') throw dockerInvalid('sctp ports are not supported by Silo');
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw dockerInvalid(`invalid port specification: "${key}"`);
  return { port, proto: proto as 'tcp' | 'udp' };
}

/** The mappings to ask the network service for, plus the bindings as docker reports them afterwards. */
export async function portMappings(bindings: PortBindings | undefined, publishAll: boolean, exposed: string[]): Promise<{ mappings: Mapping[]; resolved: PortBindings }> {
  const mappings: Mapping[] = [];
  const resolved: PortBindings = {};
  const want: [string, { HostIp?: string; HostPort?: string }[]][] = Object.entries(bindings ?? {}).map(([k, v]) => [k, v ?? [{}]]);
  if (publishAll) for (const k of exposed) if (!(k in (bindings ?? {}))) want.push([k, [{}]]);
  for (const [key, list] of want) {
    const { port, proto } = splitPort(key);
    const norm = `${port}/${proto}`;
    resolved[norm] = [];
    for (const b of list.length ? list : [{}]) {
      const hostIp = b.HostIp || undefined;
      if (hostIp?.includes(':')) throw dockerInvalid(`IPv6 host addresses are not supported by Silo: ${hostIp}`);
      const hp = b.HostPort ?? '';
      let ext: number;
      if (hp === '') ext = await freePort(proto, hostIp);
      else if (/^\d+$/.test(hp)) ext = Number(hp);
      else if (/^\d+-\d+$/.test(hp)) ext = Number(hp.split('-')[0]);
      else throw dockerInvalid(`invalid host port: "${hp}"`);
      if (ext < 1 || ext > 65535) throw dockerInvalid(`invalid host port: "${hp}"`);
      mappings.push({ Protocol: proto, InternalPort: port, ExternalPort: ext, ...(hostIp ? { HostIp: hostIp } : {}) });
      resolved[norm]!.push({ HostIp: hostIp ?? '0.0.0.0', HostPort: String(ext) });
    }
  }
  return { mappings, resolved };
}
