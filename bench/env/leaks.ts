// After teardown: anything still carrying the bench's tag (mounts, loop devices, cgroups, links by name or ifalias,
// netns, nft tables, iptables rules naming our bridges, processes). The list goes into the results; it should be empty.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { tryExec } from '../lib/proc.js';

export async function leaks(tag: string): Promise<string[]> {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(tag)) out.push(`mount ${line.split(' ')[4]}`);
  for (const line of (await tryExec('losetup', ['-a'])).stdout.split('\n')) if (line.includes(tag)) out.push(`loop ${line}`);
  for (const ctl of readdirSync('/sys/fs/cgroup')) {
    const dir = `/sys/fs/cgroup/${ctl}`;
    if (!existsSync(dir)) continue;
    try {
      for (const n of readdirSync(dir)) if (n === tag || n.startsWith(`${tag}-`)) out.push(`cgroup ${ctl}/${n}`);
    } catch {
      // not a directory
    }
  }
  const links = JSON.parse((await tryExec('ip', ['-j', '-d', 'link', 'show'])).stdout || '[]') as Array<{ ifname: string; ifalias?: string }>;
  for (const l of links) if (l.ifname.includes(tag) || l.ifalias?.includes(`:${tag}:`)) out.push(`link ${l.ifname}`);
  for (const line of (await tryExec('ip', ['netns', 'list'])).stdout.split('\n')) if (line.includes(tag)) out.push(`netns ${line}`);
  for (const line of (await tryExec('nft', ['list', 'tables'])).stdout.split('\n')) if (line.includes(tag)) out.push(`nft ${line}`);
  for (const line of (await tryExec('iptables-save', [])).stdout.split('\n')) if (line.includes(tag)) out.push(`iptables ${line}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(tag)) out.push(`process ${pid} ${cmd.slice(0, 100)}`);
    } catch {
      // gone
    }
  }
  return out;
}
