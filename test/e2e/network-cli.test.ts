// The network service as a user drives it through the CLI: a published port answers on the host's localhost and
// from another network namespace routed to the host, containers find each other by name, networks come and go.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon } from './harness.js';

const d = new TestDaemon();
const r = randomBytes(3).toString('hex');
const hostNs = `${d.tag}-outside`;
const vethHost = `silo${r}h`;
const vethNs = `silo${r}n`;
const third = 1 + (randomBytes(1)[0] % 250);
const hostIp = `10.234.${third}.1`;
const port = 20000 + (randomBytes(2).readUInt16BE() % 20000);
let www: string;

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });

before(async () => {
  www = await mkdtemp(join(tmpdir(), 'silo-test-www-'));
  await writeFile(join(www, 'index.html'), '<h1>hello from silo</h1>\n');
  await d.start();
  // A separate "host" on the network: a namespace behind a veth pair, routed to this host.
  sh('ip', ['netns', 'add', hostNs]);
  sh('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
  sh('ip', ['link', 'set', vethNs, 'netns', hostNs]);
  sh('ip', ['addr', 'add', `${hostIp}/30`, 'dev', vethHost]);
  sh('ip', ['link', 'set', vethHost, 'up']);
  sh('ip', ['-n', hostNs, 'addr', 'add', `10.234.${third}.2/30`, 'dev', vethNs]);
  sh('ip', ['-n', hostNs, 'link', 'set', vethNs, 'up']);
  sh('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', hostNs, 'route', 'add', 'default', 'via', hostIp]);
});

after(async () => {
  try {
    sh('ip', ['link', 'del', vethHost]);
  } catch {}
  try {
    sh('ip', ['netns', 'del', hostNs]);
  } catch {}
  await rm(www, { recursive: true, force: true });
  assert.deepEqual(await d.teardown(), []);
});

test('-p publishes a port: from localhost, from another namespace, and by name from a second container', async () => {
  const run = await d.silo(['run', '-d', '--name', 'web', '-p', `${port}:80`, '-v', `${www}:/www:ro`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/www']);
  assert.equal(run.code, 0, run.stderr);
  const ps = await d.silo(['ps']);
  assert.match(ps.stdout, new RegExp(`0\\.0\\.0\\.0:${port}->80/tcp`));

  let page = '';
  for (let i = 0; i < 20 && !page; i++) {
    page = sh('sh', ['-c', `busybox wget -qO- http://127.0.0.1:${port}/ 2>/dev/null || true`]);
    if (!page) await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(page, '<h1>hello from silo</h1>\n');
  assert.equal(sh('ip', ['netns', 'exec', hostNs, 'timeout', '5', 'busybox', 'wget', '-qO-', `http://${hostIp}:${port}/`]), page);

  const byName = await d.silo(['run', '--rm', 'busybox', 'wget', '-qO-', 'http://web/']);
  assert.equal(byName.stdout, page, byName.stderr);

  // silo port: every mapping, one port's host addresses, a port not published (exit 1); a random host port shown as picked.
  assert.equal((await d.silo(['port', 'web'])).stdout, `80/tcp -> 0.0.0.0:${port}\n`);
  assert.equal((await d.silo(['port', 'web', '80'])).stdout, `0.0.0.0:${port}\n`);
  const none = await d.silo(['port', 'web', '81/udp']);
  assert.deepEqual([none.code, none.stderr], [1, "silo: No public port '81/udp' published for web\n"]);
  const rnd = await d.silo(['run', '-d', '--name', 'rnd', '-p', '127.0.0.1::90/udp', 'busybox', 'sleep', '60']);
  assert.equal(rnd.code, 0, rnd.stderr);
  assert.match((await d.silo(['port', 'rnd'])).stdout, /^90\/udp -> 127\.0\.0\.1:[1-9]\d*\n$/);
  await d.silo(['rm', '-f', 'rnd']);
});

test('user networks: create, run on it, alias, connect, refuse to remove in use, remove', async () => {
  assert.equal((await d.silo(['network', 'create', 'backend'])).code, 0);
  assert.match((await d.silo(['network', 'ls'])).stdout, /backend/);
  const db = await d.silo(['run', '-d', '--name', 'db', '--network', 'backend', '--network-alias', 'database', 'busybox', 'sleep', '300']);
  assert.equal(db.code, 0, db.stderr);
  const ping = await d.silo(['run', '--rm', '--network', 'backend', 'busybox', 'ping', '-c', '1', '-W', '2', 'database']);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  // Not on the same network: the name does not resolve.
  const other = await d.silo(['run', '--rm', 'busybox', 'ping', '-c', '1', '-W', '1', 'database']);
  assert.notEqual(other.code, 0);

  const rmBusy = await d.silo(['network', 'rm', 'backend']);
  assert.equal(rmBusy.code, 125);
  assert.match(rmBusy.stderr, /active endpoints/);

  assert.equal((await d.silo(['network', 'connect', 'backend', 'web'])).code, 0);
  const viaWeb = await d.silo(['exec', 'web', 'ping', '-c', '1', '-W', '2', 'db']);
  assert.equal(viaWeb.code, 0, viaWeb.stdout + viaWeb.stderr);
  assert.equal((await d.silo(['network', 'disconnect', 'backend', 'web'])).code, 0);

  assert.equal((await d.silo(['rm', '-f', 'db'])).code, 0);
  assert.equal((await d.silo(['network', 'rm', 'backend'])).code, 0);
});

test('after removing every container and created network, only the default network is left', async () => {
  const ids = (await d.silo(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) assert.equal((await d.silo(['rm', '-f', ...ids])).code, 0);
  const nets = JSON.parse((await d.silo(['network', 'ls', '--format', 'json'])).stdout);
  assert.deepEqual(nets.map((n: { Name: string }) => n.Name), ['nat']);
  // Besides the bridge, only the endpoint pool's links and namespaces (made ahead for the next creates) may be there.
  const pooled = await d.pooled();
  const links = sh('ip', ['-o', 'link', 'show']).split('\n').filter((l) => l.includes(`silo:${d.tag}:`) && !pooled(l));
  assert.equal(links.length, 1, links.join('\n'));
  const netns = sh('ip', ['netns', 'list']).split('\n').filter((l) => !pooled(l));
  assert.doesNotMatch(netns.join('\n'), new RegExp(`${d.tag}-[0-9a-f]`));
});
