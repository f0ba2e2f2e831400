// The service's in-memory state (loaded once, written through to the store) and the helpers every operation shares:
// reference resolution and reference-counted nft element changes.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sweepTempFiles } from '../common/atomic.js';
import { conflict, invalid, notFound } from '../common/errors.js';
import { KeyedLock } from '../common/lock.js';
import type { DnsServer } from './dns/server.js';
import type { IpamState } from './ipam.js';
import { checkPrefix, tableName } from './names.js';
import { elemKey, elementLines, type Elem } from './nft/elements.js';
import { Nft } from './nft/nft.js';
import { Store } from './store.js';
import { setSysctl } from './kernel.js';
import type { Endpoint, LoadBalancer, Namespace, Network, NetworkServiceOptions } from './types.js';
import { silentLogger, type Logger } from '../common/log.js';

export class Ctx {
  readonly prefix: string;
  readonly store: Store;
  readonly nft: Nft;
  readonly runDir: string;
  /** One writer at a time: every mutation runs under this lock's single key. */
  readonly lock = new KeyedLock();
  readonly networks = new Map<string, Network>();
  readonly endpoints = new Map<string, Endpoint>();
  readonly namespaces = new Map<string, Namespace>();
  readonly lbs = new Map<string, LoadBalancer>();
  readonly ipam = new Map<string, IpamState>();
  readonly dns = new Map<string, DnsServer>();
  /** LB id → slot table (slot → backend endpoint id). */
  readonly lbSlots = new Map<string, (string | undefined)[]>();
  /** How many objects want each element; the kernel holds an element while its count is above zero. */
  readonly elemRefs = new Map<string, { elem: Elem; n: number }>();
  /** The host's resolvers from /etc/resolv.conf, read at reconcile; DNS servers forward to them. */
  hostResolvers: string[] = [];
  /** Where the next host port for an ExternalPort 0 is looked for (hostports.ts), as an offset into the range. */
  hostPortCursor = 0;

  readonly log: Logger;

  constructor(readonly opts: NetworkServiceOptions) {
    checkPrefix(opts.prefix);
    this.prefix = opts.prefix;
    // Own subdirectories, so purge() can never remove anything of the daemon's other services.
    this.store = new Store(join(opts.stateDir, 'network'));
    this.runDir = join(opts.runDir, 'network');
    this.nft = new Nft(tableName(opts.prefix));
    this.log = opts.log?.child({ service: 'network' }) ?? silentLogger();
  }


  async load(): Promise<void> {
    for (const [k, v] of await this.store.loadAll<Network>('networks')) this.networks.set(k, v);
    for (const [k, v] of await this.store.loadAll<Endpoint>('endpoints')) this.endpoints.set(k, v);
    for (const [k, v] of await this.store.loadAll<Namespace>('namespaces')) this.namespaces.set(k, v);
    for (const [k, v] of await this.store.loadAll<LoadBalancer>('loadbalancers')) this.lbs.set(k, v);
    for (const [k, v] of await this.store.loadAll<IpamState>('ipam')) this.ipam.set(k, v);
    await this.store.sweep();
    // An endpoint's resolv.conf and hosts, rewritten atomically while its container runs.
    const etc = join(this.runDir, 'etc');
    for (const e of await readdir(etc, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await sweepTempFiles(join(etc, e.name));
  }

  network(ref: string): Network {
    return resolve(this.networks, ref, 'network', (n) => n.Name);
  }

  endpoint(ref: string): Endpoint {
    return resolve(this.endpoints, ref, 'endpoint', (e) => e.Name);
  }

  namespace(ref: string): Namespace {
    return resolve(this.namespaces, ref, 'namespace', (n) => n.Name);
  }

  lb(ref: string): LoadBalancer {
    return resolve(this.lbs, ref, 'load balancer', (l) => l.Name);
  }

  /** Count `add` up and `del` down; put into the kernel only the elements whose count crossed zero, in one batch. */
  async changeElems(add: Elem[], del: Elem[]): Promise<void> {
    const toAdd: Elem[] = [];
    const toDel: Elem[] = [];
    const undo: Array<() => void> = [];
    for (const e of add) {
      const k = elemKey(e);
      const r = this.elemRefs.get(k);
      if (r) {
        r.n++;
        undo.push(() => r.n--);
      } else {
        this.elemRefs.set(k, { elem: e, n: 1 });
        toAdd.push(e);
        undo.push(() => this.elemRefs.delete(k));
      }
    }
    for (const e of del) {
      const k = elemKey(e);
      const r = this.elemRefs.get(k);
      if (!r) continue;
      r.n--;
      undo.push(() => r.n++);
      if (r.n === 0) {
        this.elemRefs.delete(k);
        toDel.push(e);
        undo.push(() => this.elemRefs.set(k, r));
      }
    }
    try {
      await this.nft.batch(elementLines('delete', this.nft.table, toDel) + elementLines('add', this.nft.table, toAdd));
    } catch (e) {
      for (const u of undo.reverse()) u();
      // Interval sets refuse an element whose start or end lies inside another one; for ACLs that means two of the
      // same action and direction overlap partly. Identical ones are fine (counted above); partial overlap is refused.
      const why = `${(e as Error).message} ${(e as { cause?: Error }).cause?.message ?? ''}`;
      if (/File exists/.test(why) && toAdd.some((x) => /^acl6?_/.test(x.set))) {
        throw conflict('the ACL overlaps an existing ACL of the same action and direction; split or merge them');
      }
      throw e;
    }
  }

  /** Turn a forwarding sysctl on; recorded so an operator can tell Silo did (never turned off again: others may rely on it). */
  async forwarding(key: string): Promise<void> {
    const old = await setSysctl(key, '1');
    if (old === undefined) return;
    const meta = (await this.store.getMeta<Record<string, unknown>>('sysctl')) ?? {};
    if (!(key in meta)) await this.store.putMeta('sysctl', { ...meta, [key]: { was: old, setAt: new Date().toISOString() } });
  }

  /** Counts elements without touching the kernel (reconcile rebuilds the table from the counts). */
  countElems(elems: Elem[]): void {
    for (const e of elems) {
      const k = elemKey(e);
      const r = this.elemRefs.get(k);
      if (r) r.n++;
      else this.elemRefs.set(k, { elem: e, n: 1 });
    }
  }
}

/** Exact id, then exact name, then a unique id prefix. */
function resolve<T extends { Id: string }>(m: Map<string, T>, ref: string, what: string, name: (v: T) => string): T {
  if (!ref) throw invalid(`${what} reference is empty`);
  const byId = m.get(ref);
  if (byId) return byId;
  const all = [...m.values()];
  const byName = all.filter((v) => name(v) === ref);
  if (byName.length === 1) return byName[0];
  const byPrefix = all.filter((v) => v.Id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1 || byName.length > 1) throw invalid(`${what} reference ${ref} is ambiguous`);
  throw notFound(what, ref);
}
