// Every kernel object's name derives from the service prefix, so two daemons (or a daemon and a test) never touch
// each other's objects. Link names are capped at 15 characters (IFNAMSIZ - 1), so links carry a short "tag" that
// still contains "silo"; ownership is proven by the link's ifalias (`silo:<prefix>:<kind>:<id>`), never by the
// name alone.

import { createHash } from 'node:crypto';
import { invalid } from '../common/errors.js';

export const IFNAMSIZ = 15;

export function checkPrefix(prefix: string): void {
  if (!/^silo[a-z0-9-]{0,40}$/.test(prefix)) {
    throw invalid(`network prefix must start with "silo" and use [a-z0-9-]: ${prefix}`);
  }
}

/** "silo" for the daemon's own prefix; "silo" + 4 hex of a hash for any other, e.g. "silo3fa2". */
export function linkTag(prefix: string): string {
  if (prefix === 'silo') return 'silo';
  return 'silo' + createHash('sha256').update(prefix).digest('hex').slice(0, 4);
}

export function bridgeName(prefix: string, index: number): string {
  const name = `${linkTag(prefix)}br${index}`;
  if (name.length > IFNAMSIZ) throw invalid(`bridge index too large: ${index}`);
  return name;
}

/** Host side of an endpoint's veth: tag + 7 hex of the endpoint id ("silo1a2b3c4", "silo3fa21a2b3c4"). */
export function vethName(prefix: string, endpointId: string): string {
  return `${linkTag(prefix)}${endpointId.slice(0, 7)}`;
}

export function netnsName(prefix: string, namespaceId: string): string {
  return `${prefix}-${namespaceId.slice(0, 12)}`;
}

/** The netns names this prefix owns: exactly `<prefix>-<12 hex>`, so "silo" never matches "silo-test-...". */
export function isOwnNetns(prefix: string, name: string): boolean {
  return name.startsWith(prefix + '-') && /^[0-9a-f]{12}$/.test(name.slice(prefix.length + 1));
}

export function tableName(prefix: string): string {
  return prefix;
}

export type LinkKind = 'br' | 'ep';

export function ownerAlias(prefix: string, kind: LinkKind, id: string): string {
  return `silo:${prefix}:${kind}:${id}`;
}

export function parseOwnerAlias(prefix: string, alias: string | undefined): { kind: LinkKind; id: string } | undefined {
  if (!alias) return undefined;
  const parts = alias.split(':');
  if (parts.length !== 4 || parts[0] !== 'silo' || parts[1] !== prefix) return undefined;
  if (parts[2] !== 'br' && parts[2] !== 'ep') return undefined;
  return { kind: parts[2], id: parts[3] };
}

/** Short id used in nft object names (chains, maps) of a load balancer. */
export function lbShort(id: string): string {
  return id.slice(0, 12);
}

/** Locally administered MAC derived from the address, as docker does (02:42:<ip>), with Silo's own second byte. */
export function macForIp(ip: number): string {
  const b = [0x02, 0x5a, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A stable bridge MAC from the network id, so the gateway's MAC does not change as ports come and go. */
export function macForBridge(networkId: string): string {
  const h = networkId.slice(0, 8);
  return '02:5b:' + h.match(/../g)!.join(':');
}
