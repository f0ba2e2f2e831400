// Where a registry name is served from, as docker and containerd users configure it: mirrors per registry host
// (containerd's hosts.toml idea; docker's --registry-mirror is the docker.io case), insecure registries (plain
// HTTP or an unverified certificate; loopback always), and per-host CA certificates in certs.d/<host>/*.crt.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalid } from '../../common/errors.js';
import { DEFAULT_DOMAIN } from '../reference.js';

export interface RegistryConfig {
  /** Registry host (as in image names: "docker.io", "registry.k8s.io", "localhost:5000") → mirror base URLs, tried in order before the host itself. */
  mirrors: Record<string, string[]>;
  /** Hosts ("host[:port]") allowed over plain HTTP or with an unverified certificate. Loopback is always allowed. */
  insecure: string[];
  /** Directory of <host>/ca.crt (and any other *.crt) trusted for that host, as /etc/docker/certs.d. */
  certsDir: string;
  /** Whether the host itself is tried after its mirrors (containerd does; off makes a mirror the only source). */
  fallbackToUpstream?: boolean;
}

export interface Endpoint {
  /** Base URL without the /v2 suffix: "https://127.0.0.1:5000". */
  base: string;
  /** "host[:port]" of the base: the key for credentials, certificates and the insecure list. */
  host: string;
  insecure: boolean;
  mirror: boolean;
  /** Extra CA certificates for this host (PEM), from certs.d. */
  ca?: string[];
}

/** docker.io's API lives elsewhere; every other registry name is its own host. */
const upstreamOf = (domain: string): string => (domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain);

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h.endsWith('.localhost');
}

/** Parse a mirror URL as given on a command line or in the file; refused in one line when it is not http(s). */
export function parseMirror(s: string): string {
  let u: URL;
  try {
    u = new URL(s.includes('://') ? s : `https://${s}`);
  } catch {
    throw invalid(`invalid registry mirror "${s}": not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid(`invalid registry mirror "${s}": only http and https`);
  if (u.username || u.password || u.search || u.hash) throw invalid(`invalid registry mirror "${s}": credentials, query and fragment are not allowed`);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '').replace(/\/v2$/, '')}`;
}

/** `--registry-mirror URL` (docker.io's, as dockerd) or `--registry-mirror registry.k8s.io=URL`. */
export function parseMirrorFlag(s: string): { host: string; url: string } {
  const eq = s.indexOf('=');
  if (eq > 0 && !s.slice(0, eq).includes('/')) return { host: s.slice(0, eq), url: parseMirror(s.slice(eq + 1)) };
  return { host: DEFAULT_DOMAIN, url: parseMirror(s) };
}

/** Read an optional JSON file `{ "mirrors": {host: [url]}, "insecure": [host], "fallbackToUpstream": bool }`. */
export async function readRegistryFile(path: string): Promise<Partial<RegistryConfig>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  let doc: { mirrors?: Record<string, string[]>; insecure?: string[]; fallbackToUpstream?: boolean };
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid(`registry configuration ${path}: not JSON`);
  }
  const mirrors: Record<string, string[]> = {};
  for (const [h, urls] of Object.entries(doc.mirrors ?? {})) {
    if (!Array.isArray(urls)) throw invalid(`registry configuration ${path}: mirrors of ${h} must be a list`);
    mirrors[h] = urls.map(parseMirror);
  }
  if (doc.insecure !== undefined && !Array.isArray(doc.insecure)) throw invalid(`registry configuration ${path}: insecure must be a list`);
  return { mirrors, insecure: doc.insecure ?? [], ...(doc.fallbackToUpstream === undefined ? {} : { fallbackToUpstream: !!doc.fallbackToUpstream }) };
}

export class RegistryHosts {
  constructor(readonly config: RegistryConfig) {}

  isInsecure(host: string): boolean {
    return isLoopbackHost(host) || this.config.insecure.includes(host);
  }

  /** Extra CAs for a host from certs.d/<host>/*.crt (read on each pull: adding a CA needs no restart, as docker). */
  private async caFor(host: string): Promise<string[] | undefined> {
    const dir = join(this.config.certsDir, host);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.crt')).sort();
    } catch {
      return undefined;
    }
    const out = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
    return out.length ? out : undefined;
  }

  private async endpoint(base: string, mirror: boolean): Promise<Endpoint> {
    const host = new URL(base).host;
    return { base, host, insecure: this.isInsecure(host), mirror, ca: await this.caFor(host) };
  }

  /** The endpoints to try for a registry name, mirrors first. An insecure host is tried over https, then http. */
  async endpoints(domain: string): Promise<Endpoint[]> {
    const out: Endpoint[] = [];
    for (const m of this.config.mirrors[domain] ?? []) out.push(await this.endpoint(m, true));
    if (out.length === 0 || this.config.fallbackToUpstream !== false) {
      const up = upstreamOf(domain);
      out.push(await this.endpoint(`https://${up}`, false));
      if (this.isInsecure(up)) out.push(await this.endpoint(`http://${up}`, false));
    }
    return out;
  }
}
