// The endpoint pool: namespaces with an endpoint plugged in, made ahead so a create only writes records. A create
// takes one, the pool refills, an address it holds is given back when asked for, a full subnet is served by draining
// it, network rm drains it, and a stopped daemon leaves none of it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { leaks, TestDaemon } from './harness.js';

const d = new TestDaemon();
const third = 1 + Math.floor(Math.random() * 250);
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });

async function pool(): Promise<{ Namespaces: string[]; Endpoints: string[] }> {
  return JSON.parse((await d.silo(['info', '--format', 'json'])).stdout).EndpointPool;
}

async function inspect(name: string) {
  return JSON.parse((await d.silo(['inspect', name])).stdout)[0];
}

before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

test('a create takes a pooled namespace and endpoint, and the pool refills', async () => {
  // The first create on a network starts its pool.
  assert.equal((await d.silo(['run', '--rm', 'busybox', 'true'])).code, 0);
  const ready = await pool();
  assert.equal(ready.Namespaces.length, 2);
  assert.equal(ready.Endpoints.length, 2);
  for (const ns of ready.Namespaces) assert.match(sh('ip', ['netns', 'list']), new RegExp(ns));
  const r = await d.silo(['run', '-d', '--name', 'p1', 'busybox', 'sleep', '300']);
  assert.equal(r.code, 0, r.stderr);
  const net = (await inspect('p1')).Document.Container.Networking;
  assert.ok(ready.Endpoints.includes(net.Endpoints[0]), 'the endpoint came from the pool');
  // It is the container's now: named for DNS, addressed, and reachable from another container by name.
  const ping = await d.silo(['run', '--rm', 'busybox', 'ping', '-c', '1', '-W', '2', 'p1']);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  const now = await pool();
  assert.equal(now.Endpoints.length, 2);
  assert.ok(!now.Endpoints.includes(net.Endpoints[0]));
  assert.equal((await d.silo(['doctor'])).code, 0, 'pooled objects are owned');
  assert.equal((await d.silo(['rm', '-f', 'p1'])).code, 0);
});

test('an address the pool holds is given back to a create that asks for it', async () => {
  // A pooled address, read from its namespace.
  const ns = (await pool()).Namespaces[0];
  assert.ok(ns);
  const addr = sh('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']).match(/inet (\S+)\//)![1];
  const r = await d.silo(['run', '-d', '--name', 'fixed', '--ip', addr, 'busybox', 'sleep', '300']);
  assert.equal(r.code, 0, r.stderr);
  assert.match((await d.silo(['exec', 'fixed', 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${addr.replace(/\./g, '\\.')}/`));
  assert.doesNotMatch(sh('ip', ['netns', 'list']), new RegExp(ns), 'that pooled namespace is gone');
  assert.equal((await d.silo(['rm', '-f', 'fixed'])).code, 0);
});

test('a small network: the pool gives way when the subnet is full; network rm drains it', async () => {
  // A /29 has 5 usable addresses besides the gateway.
  assert.equal((await d.silo(['network', 'create', '--subnet', `10.239.${third}.0/29`, 'small'])).code, 0);
  const names: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await d.silo(['run', '-d', '--network', 'small', '--name', `s${i}`, 'busybox', 'sleep', '300']);
    assert.equal(r.code, 0, `container ${i}: ${r.stderr}`);
    names.push(`s${i}`);
  }
  const full = await d.silo(['run', '-d', '--network', 'small', 'busybox', 'sleep', '300']);
  assert.notEqual(full.code, 0, 'a sixth does not fit');
  assert.equal((await d.silo(['rm', '-f', ...names])).code, 0);
  assert.equal((await d.silo(['run', '--rm', '--network', 'small', 'busybox', 'true'])).code, 0);
  assert.equal((await d.silo(['network', 'rm', 'small'])).code, 0);
  const left = (await pool()).Namespaces.length;
  assert.equal(left, 2, 'only the default network keeps a pool');
});

test('a stopped daemon leaves no pooled object', async () => {
  assert.ok((await pool()).Namespaces.length > 0);
  await d.stop();
  assert.deepEqual(leaks(d.tag).filter((l) => !(l.startsWith('link') && l.includes(':br:')) && !l.startsWith('nft')), []);
  await d.start();
});
