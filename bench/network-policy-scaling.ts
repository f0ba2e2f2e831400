// How the cost of one more port mapping or load-balancer backend grows with how many exist already. Each addition is
// one nft element change (a slot-map update for backends), so the curve should stay flat: the 1000th addition costs
// about what the 1st did. Prints a curve; asserts nothing. Run as root:
//   npx tsc -p tsconfig.json && node dist/bench/network-policy-scaling.js [count]

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { run } from '../src/common/exec.js';
import { openNetworkService } from '../src/network/index.js';

const COUNT = Number(process.argv[2] ?? 1000);
const MARKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter((m) => m <= COUNT);

function report(title: string, ms: number[]): void {
  console.log(`\n${title}`);
  console.log('  n-th addition   this one (ms)   median of the 10 around it (ms)');
  for (const m of MARKS) {
    const around = ms.slice(Math.max(0, m - 6), Math.min(ms.length, m + 4)).sort((a, b) => a - b);
    const median = around[Math.floor(around.length / 2)];
    console.log(`  ${String(m).padStart(12)}   ${ms[m - 1].toFixed(2).padStart(13)}   ${median.toFixed(2).padStart(31)}`);
  }
}

async function elementCount(table: string, map: string): Promise<number> {
  const r = await run('nft', ['-j', 'list', 'map', 'inet', table, map]);
  const doc = JSON.parse(r.stdout) as { nftables: Array<{ map?: { elem?: unknown[] } }> };
  return doc.nftables.find((x) => x.map)?.map?.elem?.length ?? 0;
}

async function main(): Promise<void> {
  const prefix = `silo-bench-${randomBytes(3).toString('hex')}`;
  const stateDir = `/var/lib/${prefix}`;
  const runDir = `/run/${prefix}`;
  const pool = Array.from({ length: 8 }, (_, i) => `10.${240 + i}.0.0/16`);
  const svc = await openNetworkService({ stateDir, runDir, prefix, subnetPool: pool });
  try {
    await svc.createNetwork({ Name: 'bench', Type: 'nat' });
    const eps: string[] = [];
    for (let i = 0; i < COUNT; i++) eps.push((await svc.createEndpoint('bench', { name: `ep${i}` })).Id);

    const pm: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const t = performance.now();
      await svc.modifyEndpoint(eps[i], {
        RequestType: 'Add',
        Policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: 20000 + i } }],
      });
      pm.push(performance.now() - t);
    }
    report(`port mappings (kernel map now holds ${await elementCount(prefix, 'portmap_any')})`, pm);

    const lb = await svc.createLoadBalancer({ Name: 'bench', FrontendVIPs: ['198.18.0.1'], PortMappings: [{ Protocol: 'tcp', InternalPort: 80, ExternalPort: 80 }] });
    const be: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const t = performance.now();
      await svc.addBackends(lb.Id, [eps[i]]);
      be.push(performance.now() - t);
    }
    report(`load-balancer backends (slot map holds ${await elementCount(prefix, `lbm_${lb.Id.slice(0, 12)}`)} slots)`, be);

    const t = performance.now();
    await svc.removeBackends(lb.Id, [eps[0]]);
    console.log(`\nremoving one backend of ${COUNT}: ${(performance.now() - t).toFixed(2)} ms`);
    console.log('Each addition = one `nft -f -` process + one atomic state-file write; the process start dominates.');
  } finally {
    await svc.purge();
    await svc.close();
    await rm(stateDir, { recursive: true, force: true });
    await rm(runDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
