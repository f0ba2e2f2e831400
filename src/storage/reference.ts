// Docker-style image reference normalisation. Pure: no I/O, so it is unit-tested by table.
// Grammar after distribution/reference: [domain/]path[:tag][@digest].

import { invalid } from '../common/errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const OFFICIAL_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_PART = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const MAX_NAME = 255;

export interface Reference {
  domain: string;
  /** Repository path below the domain, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

function isDomain(s: string): boolean {
  // The first component is a registry only when it looks like a host: has a dot, a port, or is localhost.
  if (!(s.includes('.') || s.includes(':') || s === 'localhost')) return false;
  const [host, port, ...rest] = s.split(':');
  if (rest.length > 0) return false;
  if (port !== undefined && !/^[0-9]+$/.test(port)) return false;
  return host.split('.').every((p) => DOMAIN_PART.test(p));
}

/** Parse and fill defaults; throws InvalidArgument for anything docker would refuse. */
export function parseReference(ref: string): Reference {
  const bad = (why: string) => invalid(`invalid reference format "${ref}": ${why}`);
  if (typeof ref !== 'string' || ref.length === 0) throw bad('empty');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('bad digest');
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw bad('bad sha256 digest');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad('bad tag');
  }
  const parts = rest.split('/');
  let domain = DEFAULT_DOMAIN;
  if (parts.length > 1 && isDomain(parts[0])) domain = parts.shift()!;
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw bad(/[A-Z]/.test(rest) ? 'repository name must be lowercase' : 'bad repository name');
  }
  let path = parts.join('/');
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = OFFICIAL_PREFIX + path;
  if (domain.length + 1 + path.length > MAX_NAME) throw bad('name too long');
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { domain, path, tag, digest };
}

export function formatReference(r: Reference): string {
  let s = `${r.domain}/${r.path}`;
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** `busybox` → `docker.io/library/busybox:latest`; `localhost:5000/x` → `localhost:5000/x:latest`. */
export function normalizeName(ref: string): string {
  return formatReference(parseReference(ref));
}

/** Short display form: `docker.io/library/busybox:latest` → `busybox:latest`, `docker.io/foo/bar:v1` → `foo/bar:v1`. */
export function familiarName(full: string): string {
  let s = full;
  if (s.startsWith(DEFAULT_DOMAIN + '/')) {
    s = s.slice(DEFAULT_DOMAIN.length + 1);
    // Only strip library/ when it is the whole namespace (library/x, not library/x/y).
    if (s.startsWith(OFFICIAL_PREFIX) && !s.slice(OFFICIAL_PREFIX.length).split(/[:@]/)[0].includes('/')) {
      s = s.slice(OFFICIAL_PREFIX.length);
    }
  }
  return s;
}
