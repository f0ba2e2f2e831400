// Legacy links (`--link NAME[:ALIAS]`), as dockerd makes them at create: the linked container must run and share the
// network the new one joins; the alias and the name resolve to its address through /etc/hosts, and on the default
// network the new container gets docker's link variables (ALIAS_NAME, ALIAS_PORT_<n>_<proto>..., ALIAS_ENV_<k>).

import { dockerInvalid } from './errors.js';

/** What a link needs of the linked container, looked up by the door. */
export interface LinkTarget {
  name: string;
  /** Its address on the network the new container joins, or undefined when it is not on it. */
  ip: string | undefined;
  env: string[];
  /** "80/tcp"... */
  exposed: string[];
  running: boolean;
}

export interface Link {
  target: LinkTarget;
  alias: string;
}

/** "name:alias", "/name:/parent/alias" or "name" → the container reference and the alias. */
export function parseLink(spec: string): { ref: string; alias: string } {
  const [rawRef = '', rawAlias] = spec.split(':');
  const ref = rawRef.replace(/^\//, '');
  const alias = (rawAlias ?? ref).split('/').pop() ?? '';
  if (!ref || !alias || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(alias)) throw dockerInvalid(`invalid link: ${spec}`);
  return { ref, alias };
}

export function checkLink(l: Link, parentName: string | undefined): void {
  if (!l.target.running) throw dockerInvalid(`Cannot link to a non running container: /${l.target.name} AS /${parentName ?? ''}/${l.alias}`);
  if (!l.target.ip) throw dockerInvalid(`Cannot link to /${l.target.name}, as it does not belong to the network this container joins`);
}

/** docker's link variables for a container named `parentName` (pure). */
export function linkEnv(l: Link, parentName: string): string[] {
  const prefix = l.alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const ip = l.target.ip!;
  const ports = l.target.exposed
    .map((p) => {
      const [port = '', proto = 'tcp'] = p.split('/');
      return { port: Number(port), proto };
    })
    .filter((p) => Number.isInteger(p.port) && p.port > 0)
    .sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  const out: string[] = [];
  if (ports[0]) out.push(`${prefix}_PORT=${ports[0].proto}://${ip}:${ports[0].port}`);
  for (const p of ports) {
    const k = `${prefix}_PORT_${p.port}_${p.proto.toUpperCase()}`;
    out.push(`${k}=${p.proto}://${ip}:${p.port}`, `${k}_ADDR=${ip}`, `${k}_PORT=${p.port}`, `${k}_PROTO=${p.proto}`);
  }
  out.push(`${prefix}_NAME=/${parentName}/${l.alias}`);
  for (const e of l.target.env) {
    const i = e.indexOf('=');
    if (i <= 0) continue;
    const k = e.slice(0, i);
    if (k === 'HOME' || k === 'PATH') continue; // as dockerd: build-time noise, not the linked service's settings
    out.push(`${prefix}_ENV_${k}=${e.slice(i + 1)}`);
  }
  return out;
}
