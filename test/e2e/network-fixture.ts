// Shared fixture of the network e2e tests (named *.test.ts only to stay inside the network files; it has no tests).
// Each fixture owns a unique `silo-test-<rand>` prefix; every object it or the service makes carries it and is
// removed in cleanup(), which then checks that nothing with the prefix is left in links, netns or nft tables.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { openNetworkService } from '../../src/network/index.js';
import { linkTag } from '../../src/network/names.js';
import { chooseSubnet, hostRoutes } from '../../src/network/subnets.js';
import type { Endpoint, NetworkService, NetworkServiceOptions } from '../../src/network/types.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A random unique-local /64 for a test's dual-stack network (never the host's fd00::/64). */
export function ula64(): string {
  const b = randomBytes(5);
  return `fd${(0x10 + (b[0] % 0xf0)).toString(16)}:${b.readUInt16BE(1).toString(16)}:${b.readUInt16BE(3).toString(16)}::/64`;
}

export class Fixture {
  readonly prefix = `silo-test-${randomBytes(3).toString('hex')}`;
  readonly tag = linkTag(this.prefix);
  readonly stateDir = `/var/lib/${this.prefix}`;
  readonly runDir = `/run/${this.prefix}`;
  svc!: NetworkService;
  private readonly procs: ChildProcess[] = [];
  private readonly netns: string[] = [];
  private readonly links: string[] = [];
  private readonly dirs: string[] = [];
  private subnetsTaken: string[] = [];

  async open(extra: Partial<NetworkServiceOptions> = {}): Promise<NetworkService> {
    this.svc = await openNetworkService({ stateDir: this.stateDir, runDir: this.runDir, prefix: this.prefix, subnetPool: await this.pool(), ...extra });
    return this.svc;
  }

  /** Random /24s from 10.200.0.0/13 not overlapping any host route: never the default 10.88/16 of a real daemon. */
  async pool(): Promise<string[]> {
    const start = randomBytes(2).readUInt16BE() % 2000;
    return Array.from({ length: 40 }, (_, i) => {
      const n = start + i;
      return `10.${200 + (n >> 8) % 8}.${n & 255}.0/24`;
    });
  }

  async freeSubnet(): Promise<string> {
    const s = chooseSubnet(await this.pool(), await hostRoutes(), this.subnetsTaken);
    this.subnetsTaken.push(s);
    return s;
  }

  /** A container stand-in: a service namespace with one endpoint attached, resolv.conf/hosts installed. */
  async container(network: string, name: string, opts: { aliases?: string[]; ip?: string } = {}): Promise<{ ep: Endpoint; ns: string }> {
    const ns = await this.svc.createNamespace();
    const ep = await this.svc.createEndpoint(network, { name, ...opts });
    await this.svc.attach(ep.Id, ns.Id);
    // `ip netns exec` bind-mounts /etc/netns/<name>/* over /etc, as a runtime would bind the etc files.
    const dir = `/etc/netns/${ns.Name}`;
    this.dirs.push(dir);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'resolv.conf'), this.svc.resolvConf(ep.Id));
    await writeFile(join(dir, 'hosts'), this.svc.hosts(ep.Id));
    return { ep: this.svc.getEndpoint(ep.Id), ns: ns.Name };
  }

  /** A namespace outside Silo joined to the host by a veth: host side .1, namespace side .2 of a fresh /24. */
  async peerNamespace(kind: string, hostAddress = true): Promise<{ ns: string; host: string; hostIp: string; nsIp: string; subnet: string }> {
    const subnet = await this.freeSubnet();
    const base = subnet.split('.').slice(0, 3).join('.');
    const ns = `${this.prefix}-${kind}`;
    const host = `${this.tag}${kind.slice(0, 3)}`;
    this.netns.push(ns);
    this.links.push(host);
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    if (hostAddress) await run('ip', ['addr', 'add', `${base}.1/24`, 'dev', host]);
    await run('ip', ['link', 'set', host, 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${base}.2/24`, 'dev', 'eth0']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    if (hostAddress) await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `${base}.1`]);
    return { ns, host, hostIp: `${base}.1`, nsIp: `${base}.2`, subnet };
  }

  /** `busybox httpd` in a namespace serving `page` as /index.html and a CGI that prints the client address. */
  async httpd(ns: string, page: string, port = 80): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), `${this.prefix}-www-`));
    this.dirs.push(dir);
    await writeFile(join(dir, 'index.html'), page);
    await mkdir(join(dir, 'cgi-bin'));
    await writeFile(join(dir, 'cgi-bin', 'addr'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s" "$REMOTE_ADDR"\n');
    await chmod(join(dir, 'cgi-bin', 'addr'), 0o755);
    const p = spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', String(port), '-h', dir], { stdio: 'ignore' });
    this.procs.push(p);
    await sleep(200);
  }

  /** GET url from inside ns (undefined ns = the host); the body, or undefined on failure. */
  async fetch(ns: string | undefined, url: string, timeoutS = 2): Promise<string | undefined> {
    // busybox 1.35's `wget -T` segfaults here, so coreutils' timeout bounds it instead.
    const cmd = ['timeout', String(timeoutS), 'busybox', 'wget', '-q', '-O', '-', url];
    const r = await run(ns ? 'ip' : cmd[0], ns ? ['netns', 'exec', ns, ...cmd] : cmd.slice(1), { allowFail: true, timeoutMs: (timeoutS + 3) * 1000 });
    return r.code === 0 ? r.stdout : undefined;
  }

  /** The client address the CGI of httpd() saw, without the IPv4-mapped IPv6 dress. */
  async clientAddr(ns: string | undefined, url: string): Promise<string | undefined> {
    return (await this.fetch(ns, url))?.replace(/^\[::ffff:(.*)\]$/, '$1');
  }

  async exec(ns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', ns, ...args], { allowFail: true, timeoutMs: 15_000 });
  }

  /** Names with this prefix still in the kernel. */
  async leftovers(): Promise<string[]> {
    const out: string[] = [];
    const links = (await run('ip', ['-o', 'link'])).stdout;
    for (const l of links.split('\n')) if (l.includes(this.tag) || l.includes(this.prefix)) out.push(l.slice(0, 80));
    const ns = (await run('ip', ['netns', 'list'])).stdout;
    for (const l of ns.split('\n')) if (l.includes(this.prefix)) out.push(`netns ${l}`);
    const tables = (await run('nft', ['list', 'tables'])).stdout;
    for (const l of tables.split('\n')) if (l.includes(this.prefix)) out.push(l);
    return out;
  }

  async cleanup(): Promise<string[]> {
    for (const p of this.procs) p.kill('SIGKILL');
    await sleep(50);
    if (this.svc) await this.svc.purge().catch((e) => console.error('purge:', e));
    await this.svc?.close();
    for (const l of this.links) await run('ip', ['link', 'del', l], { allowFail: true });
    for (const n of this.netns) await run('ip', ['netns', 'del', n], { allowFail: true });
    for (const d of this.dirs) await rm(d, { recursive: true, force: true });
    await rm(this.stateDir, { recursive: true, force: true });
    await rm(this.runDir, { recursive: true, force: true });
    return this.leftovers();
  }
}
