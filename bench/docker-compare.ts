// Docker behaviour side by side: the same docker CLI commands against Silo's Docker API and against a dockerd this
// script starts (bench/env/docker-peer.ts: Debian's dockerd with the same busybox), each command's output and exit
// code compared once what differs by nature (container ids, which are also the hostnames; how an error from runc is
// passed on) is masked. What the README and the code call "as dockerd does" can be checked again with it on any
// machine that has dockerd.
// Prints each case that differs and a summary; writes bench/results/docker-compare.json.
// Run as root: `node dist/bench/docker-compare.js`.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerPeer } from './env/docker-peer.js';
import { DOCKER_CLI } from './env/dockerd.js';
import { startSilo } from './env/silo.js';
import { cleanupAll, cleanupOnSignals } from './lib/cleanup.js';
import { newTag } from './setup.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Case {
  /** docker CLI arguments after -H. */
  args: string[];
  /** A difference known and left as it is, and why. */
  known?: string;
}

const run = (...a: string[]) => ['run', '--rm', ...a];
const CASES: Case[] = [
  { args: run('busybox', 'id') },
  { args: run('-u', '1000:1000', 'busybox', 'id') },
  { args: run('-u', 'nobody', 'busybox', 'id') },
  { args: run('--group-add', '10', '--group-add', 'audio', 'busybox', 'id') },
  { args: run('--group-add', 'nosuchgroup', 'busybox', 'id') },
  { args: run('-e', 'A=1', '-e', 'PATH=/bin', 'busybox', 'env') },
  { args: run('-w', '/tmp', '-u', '1000', 'busybox', 'pwd') },
  { args: run('-w', 'rel', 'busybox', 'pwd') },
  { args: run('--name', 'a', 'busybox', 'true') },
  { args: run('busybox', 'sh', '-c', 'exit 3') },
  { args: run('busybox', 'nosuchcommand') },
  { args: run('busybox', '/etc') },
  { args: run('--read-only', 'busybox', 'touch', '/x') },
  { args: run('busybox', 'sh', '-c', 'grep ^Cap /proc/self/status') },
  { args: run('busybox', 'sh', '-c', 'ulimit -n; ulimit -u; ulimit -s') },
  { args: run('busybox', 'ls', '/dev') },
  { args: run('busybox', 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start', '/proc/sys/net/ipv4/ping_group_range') },
  { args: run('--hostname', 'h1', 'busybox', 'sh', '-c', 'hostname; cat /etc/hostname') },
  { args: run('--tmpfs', '/t', 'busybox', 'sh', '-c', 'grep " /t " /proc/mounts') },
  { args: run('--shm-size', '8m', 'busybox', 'sh', '-c', "df -k /dev/shm | tail -1 | awk '{print $2}'") },
  { args: run('--init', 'busybox', 'ps', '-o', 'ppid,comm') },
  { args: run('busybox', 'sh', '-c', 'echo 10.1.2.3 x >> /etc/hosts && echo ok') },
  { args: run('busybox', 'ls', '-l', '/etc/mtab') },
  { args: run('busybox', 'sh', '-c', 'grep -c . /proc/self/mountinfo') },
];

interface Outcome {
  code: number;
  out: string;
}

function docker(socket: string, args: string[]): Outcome {
  const r = spawnSync(DOCKER_CLI, ['-H', `unix://${socket}`, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 128, out: mask((r.stdout ?? '') + (r.stderr ?? '')) };
}

/** Container ids (and so default hostnames) differ by nature, and so do the words of the components that pass runc's
 *  error on (dockerd's shim and containerd, Silo's start): runc's own words and the exit code are compared. */
function mask(s: string): string {
  return s
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<id>')
    .replace(/(Error response from daemon: ).*?(runc create failed: .*?)(: unknown)?\.$/gm, '$1… $2.')
    .trim();
}

async function main(): Promise<void> {
  cleanupOnSignals();
  // A short tag (newTag): the run dir holds the containers' attach sockets, whose paths must fit 108 bytes.
  const tag = newTag();
  try {
    const siloSock = (await startSilo(tag, join(root, 'bin/silo'), `/var/lib/${tag}`, `/run/${tag}`)).dockerSocket;
    const peer = await startDockerPeer(siloSock, (m) => process.stderr.write(`${m}\n`));
    const dockerdVersion = docker(peer.socket, ['version', '--format', '{{.Server.Version}}']).out;
    const results = CASES.map((c) => {
      const s = docker(siloSock, c.args);
      const d = docker(peer.socket, c.args);
      const same = s.code === d.code && s.out === d.out;
      if (!same) {
        process.stdout.write(`\n${c.known ? 'known' : 'DIFFERS'}: docker ${c.args.join(' ')}${c.known ? `  (${c.known})` : ''}\n`);
        process.stdout.write(`  silo     exit ${s.code}: ${s.out.replace(/\n/g, '\n           ')}\n`);
        process.stdout.write(`  dockerd  exit ${d.code}: ${d.out.replace(/\n/g, '\n           ')}\n`);
      }
      return { args: c.args, same, ...(c.known ? { known: c.known } : {}), silo: s, dockerd: d };
    });
    const differ = results.filter((r) => !r.same && !r.known).length;
    const known = results.filter((r) => !r.same && r.known).length;
    console.log(`\n${results.length} cases against dockerd ${dockerdVersion}: ${results.length - differ - known} the same, ${known} known differences, ${differ} other differences`);
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results/docker-compare.json'), JSON.stringify({ when: new Date().toISOString(), dockerd: dockerdVersion, results }, null, 2) + '\n');
    if (differ) process.exitCode = 1;
  } finally {
    await cleanupAll(); // dockerd, then Silo's daemon with every object carrying its tag (bench/env/silo.ts)
  }
}

await main();
