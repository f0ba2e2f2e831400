// Request generators for the API fuzz test: a seeded PRNG (so a failure reproduces with SILO_FUZZ_SEED), the native
// API's routes with a valid body each, and mutations of those bodies. Kept apart from the test so it stays readable.

export type Rng = () => number;

/** mulberry32: small, fast and good enough to pick requests. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
export const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

export function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Values that break validators: wrong types, edges, traversal, NUL, huge and deep. */
export function weird(r: Rng): unknown {
  const deep = (n: number): unknown => (n ? [deep(n - 1)] : 1);
  return pick<() => unknown>(r, [
    () => null, () => true, () => -1, () => 0, () => 1e308, () => 2 ** 53 + 1, () => -0.5, () => '', () => 'x'.repeat(int(r, 1, 20000)),
    () => '../../../../etc/passwd', () => '/proc/self/fd/3', () => 'a\u0000b', () => '\ud800', () => '%00%2e%2e', () => [], () => ({}),
    () => deep(int(r, 10, 500)), () => JSON.parse('{"__proto__":{"polluted":1}}'), () => ({ constructor: { prototype: { x: 1 } } }),
    () => randomBytes(r, int(r, 1, 64)).toString('latin1'), () => [1, 'a', null, {}], () => 'SIGKILL', () => 65536, () => '1',
  ])();
}

/** A randomly mutated deep copy of a JSON value: delete, replace or add at one or more random places. */
export function mutate(r: Rng, v: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(v));
  if (r() < 0.08) return weird(r); // the whole body has the wrong type
  const times = int(r, 1, 3);
  let out = copy;
  for (let i = 0; i < times; i++) out = mutateOnce(r, out);
  return out;
}

function mutateOnce(r: Rng, root: unknown): unknown {
  // Walk down to a random container node.
  let node = root;
  for (let depth = 0; depth < 6 && r() < 0.7; depth++) {
    const kids = node && typeof node === 'object' ? Object.values(node as object).filter((k) => k && typeof k === 'object') : [];
    if (!kids.length) break;
    node = pick(r, kids);
  }
  if (!node || typeof node !== 'object') return weird(r);
  const o = node as Record<string, unknown>;
  const keys = Object.keys(o);
  const op = r();
  if (Array.isArray(o) && op < 0.15) o.push(...Array.from({ length: int(r, 1, 500) }, () => o[0] ?? weird(r)));
  else if (keys.length && op < 0.35) delete o[pick(r, keys)];
  else if (keys.length && op < 0.85) o[pick(r, keys)] = weird(r);
  else if (Array.isArray(o)) o.push(weird(r));
  else o[pick(r, ['Fuzz', 'x', '', '__proto__', 'constructor', 'Id', 'Name'])] = weird(r);
  return root;
}

/** Invalid JSON text: a valid body cut short, salted with bytes, or noise. */
export function brokenJson(r: Rng, valid: unknown): Buffer {
  const text = JSON.stringify(valid);
  return pick<() => Buffer>(r, [
    () => Buffer.from(text.slice(0, int(r, 1, Math.max(1, text.length - 1)))),
    () => {
      const at = int(r, 0, text.length);
      return Buffer.concat([Buffer.from(text.slice(0, at)), randomBytes(r, int(r, 1, 8)), Buffer.from(text.slice(at))]);
    },
    () => randomBytes(r, int(r, 1, 512)),
    () => Buffer.from('{"a":'.repeat(int(r, 1, 5000))),
    () => Buffer.from(`${text}${text}`),
    () => Buffer.from("{'single': 'quotes'}"),
    () => Buffer.from('\ufeff' + text.replace(/"/, '\u201c')),
  ])();
}

/** A string for a path parameter: mostly garbage, sometimes a real object so deeper code runs. */
const enc = (s: string) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd')); // lone surrogates cannot be encoded

export function param(r: Rng, real: string[]): string {
  if (r() < 0.35 && real.length) return enc(pick(r, real));
  return pick<() => string>(r, [
    () => enc(String(weird(r))).slice(0, 8000),
    () => '%', () => '%zz', () => '..', () => '%2e%2e%2f%2e%2e%2fetc', () => 'a'.repeat(int(r, 64, 9000)),
    () => '0'.repeat(64), () => 'f', () => enc('name:tag@sha256:xyz'), () => '%00',
  ])();
}

/** A garbage query string for any route. */
export function query(r: Rng): string {
  if (r() < 0.4) return '';
  const keys = ['all', 'force', 'follow', 'tail', 'timestamps', 'since', 'types', 'h', 'w', 'name', 'change', 'comment', 'network', 'stdin', 'detach', 'condition', 'x'];
  const vals = ['1', '0', 'true', '-1', '99999999999999', 'NaN', '', '%zz', 'all', 'Statistics,ProcessList,Bogus', '2024-13-45T99:99:99Z', 'CMD', 'FROM x', 'a'.repeat(3000)];
  const n = int(r, 1, 4);
  return '?' + Array.from({ length: n }, () => `${pick(r, keys)}=${pick(r, vals).replace(/ /g, '+')}`).join('&');
}

/** The native API's routes (docs/api.md, src/api/native/routes-*.ts) with a valid body for those that take one. */
export interface Route {
  method: string;
  path: string; // :p marks a parameter
  body?: unknown;
  /** Answers that stream or block (events, logs with follow, wait, attach): a timeout is not a failure. */
  streams?: boolean;
}

export function routes(safePort: number, subnet: string): Route[] {
  const pm = { Protocol: 'tcp', InternalPort: 80, ExternalPort: safePort };
  return [
    { method: 'GET', path: '/v1/version' }, { method: 'GET', path: '/v1/info' }, { method: 'GET', path: '/v1/doctor' },
    { method: 'GET', path: '/v1/events', streams: true },
    { method: 'POST', path: '/v1/systems', body: { Name: 'fzc', Image: 'busybox', Document: { Process: { CommandArgs: ['true'], WorkingDirectory: '/' }, Container: { Memory: { SizeInMB: 64 }, Networking: { PortMappings: [pm] } }, Labels: { a: 'b' } } } },
    { method: 'GET', path: '/v1/systems' }, { method: 'GET', path: '/v1/systems/:p' }, { method: 'DELETE', path: '/v1/systems/:p' },
    { method: 'POST', path: '/v1/systems/:p/start' }, { method: 'POST', path: '/v1/systems/:p/shutdown', body: { TimeoutSeconds: 1, Signal: 'SIGTERM' } },
    { method: 'POST', path: '/v1/systems/:p/terminate' }, { method: 'POST', path: '/v1/systems/:p/signal', body: { Signal: 'SIGUSR1' } },
    { method: 'POST', path: '/v1/systems/:p/pause' }, { method: 'POST', path: '/v1/systems/:p/resume' },
    { method: 'POST', path: '/v1/systems/:p/wait', streams: true }, { method: 'POST', path: '/v1/systems/:p/modify', body: { ResourcePath: 'Container/Memory/SizeInMB', Settings: 64 } },
    { method: 'POST', path: '/v1/systems/:p/resize' }, { method: 'GET', path: '/v1/systems/:p/properties' },
    { method: 'GET', path: '/v1/systems/:p/logs', streams: true },
    { method: 'POST', path: '/v1/systems/:p/commit', body: { Name: 'fzimg:1', Comment: 'c', Author: 'a', Changes: ['CMD ["sh"]', 'ENV A=b'] } },
    { method: 'POST', path: '/v1/systems/:p/processes', body: { CommandArgs: ['true'], WorkingDirectory: '/', Environment: { A: 'b' }, EmulateConsole: true, ConsoleSize: [24, 80] } },
    { method: 'GET', path: '/v1/processes/:p' }, { method: 'POST', path: '/v1/processes/:p/resize' }, { method: 'POST', path: '/v1/processes/:p/start' },
    { method: 'GET', path: '/v1/images' }, { method: 'GET', path: '/v1/images/:p' }, { method: 'DELETE', path: '/v1/images/:p' }, { method: 'GET', path: '/v1/layers' },
    { method: 'POST', path: '/v1/images/import' }, { method: 'POST', path: '/v1/images/prune' }, { method: 'POST', path: '/v1/images/:p/tag', body: { Name: 'fz:tag' } },
    { method: 'POST', path: '/v1/networks', body: { Name: 'fznet', Type: 'nat', Subnets: [{ IpAddressPrefix: subnet }], Policies: [{ Type: 'OutBoundNAT', Settings: { Exceptions: ['198.19.0.0/16'] } }] } },
    { method: 'GET', path: '/v1/networks' }, { method: 'GET', path: '/v1/networks/:p' }, { method: 'DELETE', path: '/v1/networks/:p' },
    { method: 'GET', path: '/v1/endpoints' }, { method: 'GET', path: '/v1/endpoints/:p' }, { method: 'GET', path: '/v1/namespaces' },
    { method: 'POST', path: '/v1/endpoints/:p/modify', body: { RequestType: 'Add', Policies: [{ Type: 'PortMapping', Settings: pm }] } },
    { method: 'POST', path: '/v1/systems/:p/networks', body: { Network: 'fznet', Aliases: ['a'] } }, { method: 'DELETE', path: '/v1/systems/:p/networks/:p' },
    { method: 'POST', path: '/v1/loadbalancers', body: { Name: 'fzlb', PortMappings: [pm], Endpoints: ['fz'] } },
    { method: 'GET', path: '/v1/loadbalancers' }, { method: 'GET', path: '/v1/loadbalancers/:p' }, { method: 'DELETE', path: '/v1/loadbalancers/:p' },
    { method: 'POST', path: '/v1/loadbalancers/:p/backends', body: { Add: ['fz'] } },
  ];
}

/** Keep a mutated body from touching the host outside the test's objects: published ports stay in the test's own
 *  range, and no network may take over a host interface. */
export function tame(v: unknown, safePort: number): unknown {
  if (Array.isArray(v)) return Array.from(v, (x) => tame(x, safePort));
  if (!v || typeof v !== 'object') return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'Interface') continue;
    if (k === 'Type' && x === 'l2bridge') o[k] = 'nat';
    else if (k === 'ExternalPort' && typeof x === 'number' && Number.isInteger(x) && x > 0) o[k] = safePort + (x % 50);
    else o[k] = tame(x, safePort);
  }
  return o;
}
