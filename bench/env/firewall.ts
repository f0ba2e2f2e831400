// dockerd and podman's CNI plugins add iptables chains and rules, and dockerd flips sysctls; none of them undoes all of
// it on a clean stop. The machine is shared, so the bench takes a snapshot before the peers start and afterwards
// deletes exactly what appeared since (rules, then chains), restores built-in chain policies and the sysctls, and
// drops the iptables-nft tables that did not exist before if they are empty again. Silo's own nft table is separate.

import { readFile, writeFile } from 'node:fs/promises';
import { tryExec } from '../lib/proc.js';

interface Table {
  chains: Map<string, string>; // name → policy ("-" for user chains)
  rules: string[];
}
type Snapshot = Map<string, Table>;

const SYSCTLS = [
  '/proc/sys/net/ipv4/ip_forward',
  '/proc/sys/net/bridge/bridge-nf-call-iptables',
  '/proc/sys/net/bridge/bridge-nf-call-ip6tables',
  '/proc/sys/net/ipv4/conf/all/route_localnet',
];

function parse(save: string): Snapshot {
  const out: Snapshot = new Map();
  let t: Table | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) out.set(line.slice(1), (t = { chains: new Map(), rules: [] }));
    else if (line.startsWith(':') && t) {
      const [name, policy] = line.slice(1).split(' ');
      t.chains.set(name, policy);
    } else if (line.startsWith('-A ') && t) t.rules.push(line);
  }
  return out;
}

async function save(bin: string): Promise<Snapshot> {
  const r = await tryExec(bin, []);
  return parse(r.code === 0 ? r.stdout : '');
}

async function nftTables(): Promise<Set<string>> {
  return new Set((await tryExec('nft', ['list', 'tables'])).stdout.split('\n').filter(Boolean));
}

export interface FirewallSnapshot {
  restore(): Promise<string[]>;
}

export async function snapshotFirewall(): Promise<FirewallSnapshot> {
  const before = { v4: await save('iptables-save'), v6: await save('ip6tables-save') };
  const tables = await nftTables();
  const sysctls = new Map<string, string>();
  for (const p of SYSCTLS) await readFile(p, 'utf8').then((v) => sysctls.set(p, v.trim()), () => {});
  return {
    async restore() {
      const notes: string[] = [];
      for (const [fam, saveBin, restoreBin, prev] of [
        ['v4', 'iptables-save', 'iptables-restore', before.v4],
        ['v6', 'ip6tables-save', 'ip6tables-restore', before.v6],
      ] as const) {
        const now = await save(saveBin);
        const iptables = saveBin.replace('-save', '');
        for (const [name, table] of now) {
          const old = prev.get(name) ?? { chains: new Map(), rules: [] };
          const oldRules = new Set(old.rules);
          const added = table.rules.filter((r) => !oldRules.has(r));
          const newChains = [...table.chains.keys()].filter((c) => !old.chains.has(c));
          const policies = [...table.chains].filter(([c, p]) => p !== '-' && old.chains.has(c) && old.chains.get(c) !== p);
          if (!added.length && !newChains.length && !policies.length) continue;
          // Rules first, through iptables-restore (it parses the rule quoting); chains after, once nothing jumps to them.
          const script = [`*${name}`, ...policies.map(([c]) => `:${c} ${old.chains.get(c)} [0:0]`), ...added.map((r) => r.replace(/^-A /, '-D ')), 'COMMIT'];
          const r = await tryExec(restoreBin, ['--noflush'], { input: script.join('\n') + '\n' });
          if (r.code !== 0) notes.push(`${fam} ${name}: ${restoreBin}: ${r.stderr.trim().split('\n')[0]}`);
          for (const c of newChains) await tryExec(iptables, ['-t', name, '-F', c]);
          for (const c of newChains) await tryExec(iptables, ['-t', name, '-X', c]);
          notes.push(`${fam} ${name}: -${added.length} rules, -${newChains.length} chains${policies.length ? `, policy ${policies.map(([c]) => c)}` : ''}`);
        }
      }
      for (const [p, v] of sysctls) await writeFile(p, v).catch(() => {});
      // iptables-nft made these tables for the peers; gone again if no rule and no user chain is left in them.
      const after = { ip: await save('iptables-save'), ip6: await save('ip6tables-save') };
      for (const t of await nftTables()) {
        const m = /^table (ip|ip6) (filter|nat|mangle|raw|security)$/.exec(t);
        if (!m || tables.has(t)) continue;
        const left = after[m[1] as 'ip' | 'ip6'].get(m[2]);
        if (left && !left.rules.length && [...left.chains.values()].every((p) => p !== '-')) await tryExec('nft', ['delete', 'table', m[1], m[2]]);
      }
      return notes;
    },
  };
}
