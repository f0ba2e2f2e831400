// Stress, short: 8 concurrent clients × 5 full lifecycles (create with a published port, start, a request through the
// port, exec, stop, remove) through the native API: zero errors, zero leaks, and the daemon's memory does not run
// away. The long run (8 × 200) with its figures is bench/stress.ts.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { TestDaemon, leaks } from './harness.js';
import { runStress, rssGrowth } from './stress-load.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

test('8 clients × 5 lifecycles: no errors, no leaks, bounded memory', async () => {
  const clients = 8;
  const cycles = 5;
  const r = await runStress({ socket: d.socket, daemonPid: d.pid!, clients, cycles, portBase: randomInt(20000, 40000), sampleMs: 250 });
  assert.deepEqual(r.errors, []);
  assert.equal((await d.silo(['ps', '-aq'])).stdout, '', 'every container was removed');
  // Only the default network's bridge and table remain, which the daemon keeps across containers.
  // ... and the endpoint pool's namespaces and endpoints, made ahead for the next creates.
  const pooled = await d.pooled();
  assert.deepEqual(leaks(d.tag).filter((l) => !(l.startsWith('link') && l.includes(':br:')) && !l.startsWith('nft') && !pooled(l)), []);
  const doc = await d.silo(['doctor']);
  assert.equal(doc.code, 0, doc.stdout + doc.stderr);
  const g = rssGrowth(r.rss);
  const mb = (b: number) => (b / 1048576).toFixed(1);
  console.log(`stress: ${r.lifecycles} lifecycles in ${(r.wallMs / 1000).toFixed(1)} s; daemon RSS ${mb(g.first)} → ${mb(g.last)} MB (${g.growth >= 0 ? '+' : ''}${mb(g.growth)})`);
  assert.ok(g.growth < 50 * 1048576, `daemon RSS grew by ${mb(g.growth)} MB`);
});
