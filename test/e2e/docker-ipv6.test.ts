// IPv6 through the docker CLI: `network create --ipv6` with two subnets, a container's IPv6 address, gateway and ports
// in inspect, `-p [::]:P:80` and a plain `-p P:80` reached over IPv6 from the host, a container found by name over
// IPv6 (AAAA); on an IPv4-only network `-p [::]:…` is refused saying why while `-p P:80` works; [::1] and --ip6 are
// refused. Only unique-local addresses and loopback.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { run } from '../../src/common/exec.js';
import { chooseSubnet, hostRoutes } from '../../src/network/subnets.js';
import { DockerFixture, randomPort } from './docker-fixture.js';
import { ula64 } from './network-fixture.js';

const fx = new DockerFixture();
const docker = (args: string[]) => fx.run(args);
const tag = `silo-test-v6${randomBytes(2).toString('hex')}`;

before(async () => {
  await fx.start();
});

after(async () => {
  await docker(['rm', '-f', `${tag}-w`, `${tag}-w4`]);
  await fx.d.silo(['rm', '-f', `${tag}-s`]);
  await docker(['network', 'rm', `${tag}-dual`, `${tag}-v4`, `${tag}-native`]);
  assert.deepEqual(await fx.teardown(), []);
});

async function subnet4(): Promise<string> {
  const start = randomBytes(2).readUInt16BE() % 2000;
  const pool = Array.from({ length: 40 }, (_, i) => `10.${200 + ((start + i) >> 8) % 8}.${(start + i) & 255}.0/24`);
  return chooseSubnet(pool, await hostRoutes(), []);
}

/** curl from the host; the body, or '' when nothing answers. */
async function curl(url: string): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const r = await run('curl', ['-sg', '-m', '2', url], { allowFail: true });
    if (r.code === 0) return r.stdout;
    await new Promise((res) => setTimeout(res, 100));
  }
  return '';
}

test('docker network create --ipv6: addresses, inspect, [::] and plain ports over IPv6, AAAA by name', async () => {
  const s4 = await subnet4();
  const s6 = ula64();
  const p6 = s6.replace(/::\/64$/, '::');
  const net = `${tag}-dual`;
  const c = await docker(['network', 'create', '--ipv6', '--subnet', s4, '--subnet', s6, net]);
  assert.equal(c.code, 0, c.stderr);
  const ni = JSON.parse((await docker(['network', 'inspect', net])).stdout)[0];
  assert.equal(ni.EnableIPv6, true);
  assert.deepEqual(ni.IPAM.Config.map((x: { Subnet: string; Gateway: string }) => `${x.Subnet} ${x.Gateway}`), [`${s4} ${s4.replace(/0\/24$/, '1')}`, `${s6} ${p6}1`]);

  const [pAny6, pBoth] = [randomPort(), randomPort()];
  const w = `${tag}-w`;
  const r = await docker(['run', '-d', '--name', w, '--network', net, '-p', `[::]:${pAny6}:80`, '-p', `${pBoth}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  assert.equal(r.code, 0, r.stderr);
  const fmt = `{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}} {{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}`;
  const [ip4, ip6, len6, gw6] = (await docker(['inspect', '--format', fmt, w])).stdout.trim().split(' ');
  assert.equal(ip6, `${p6}${Number(ip4.split('.')[3]).toString(16)}`);
  assert.equal(len6, '64');
  assert.equal(gw6, `${p6}1`);
  assert.equal((await docker(['inspect', '--format', '{{.NetworkSettings.GlobalIPv6Address}}', w])).stdout.trim(), ip6);
  const ports = (await docker(['port', w])).stdout;
  assert.match(ports, new RegExp(`\\[::\\]:${pAny6}`));
  assert.match(ports, new RegExp(`0\\.0\\.0\\.0:${pBoth}`));
  assert.match(ports, new RegExp(`\\[::\\]:${pBoth}`));
  const route = await docker(['exec', w, 'ip', '-6', 'route', 'show', 'default']);
  assert.match(route.stdout, new RegExp(`default via ${p6}1 dev eth0`));

  // The host reaches both over IPv6 on one of its own addresses (the bridge's gateway), the plain one over IPv4 too.
  const hostname = (await docker(['exec', w, 'hostname'])).stdout;
  assert.equal(await curl(`http://[${p6}1]:${pAny6}/hostname`), hostname);
  assert.equal(await curl(`http://[${p6}1]:${pBoth}/hostname`), hostname);
  assert.equal(await curl(`http://127.0.0.1:${pBoth}/hostname`), hostname);

  // Another container finds it by name over IPv6.
  const peer = await docker(['run', '--rm', '--network', net, 'busybox', 'sh', '-c', `nslookup -type=AAAA ${w} && wget -qO- http://[${ip6}]/hostname`]);
  assert.equal(peer.code, 0, peer.stderr + peer.stdout);
  assert.match(peer.stdout, new RegExp(`Address: ${ip6}`));
  assert.ok(peer.stdout.endsWith(hostname), peer.stdout);

  // --ip6 and [::1] are refused, saying why.
  const ip6fixed = await docker(['run', '--rm', '--network', net, '--ip6', `${p6}99`, 'busybox', 'true']);
  assert.equal(ip6fixed.code, 125);
  assert.match(ip6fixed.stderr, /--ip6 is not supported by Silo/);
  const lo6 = await docker(['run', '--rm', '--network', net, '-p', `[::1]:${randomPort()}:80`, 'busybox', 'true']);
  assert.equal(lo6.code, 125);
  assert.match(lo6.stderr, /does not forward IPv6 loopback traffic/);
});

test('an IPv4-only network refuses -p [::]:P:80 with why, and a plain -p P:80 works as before', async () => {
  const net = `${tag}-v4`;
  assert.equal((await docker(['network', 'create', '--subnet', await subnet4(), net])).code, 0);
  assert.equal(JSON.parse((await docker(['network', 'inspect', net])).stdout)[0].EnableIPv6, false);
  const bad = await docker(['run', '--rm', '--network', net, '-p', `[::]:${randomPort()}:80`, 'busybox', 'true']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /has no IPv6 subnet and Silo has no userland proxy to carry IPv6 to IPv4/);
  const p = randomPort();
  const w = `${tag}-w4`;
  assert.equal((await docker(['run', '-d', '--name', w, '--network', net, '-p', `${p}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'])).code, 0);
  assert.equal(await curl(`http://127.0.0.1:${p}/hostname`), (await docker(['exec', w, 'hostname'])).stdout);
  assert.doesNotMatch((await docker(['port', w])).stdout, /::/);
  const sub6 = await docker(['network', 'create', '--subnet', ula64(), `${tag}-nov6`]);
  assert.notEqual(sub6.code, 0);
  assert.match(sub6.stderr, /needs an IPv6 network: add --ipv6/);
});

test('the silo CLI (native API): network create --ipv6 with an automatic unique-local /64, run -p [::]:P:80, kept across a daemon restart', async () => {
  const net = `${tag}-native`;
  const c = await fx.d.silo(['network', 'create', '--ipv6', '--subnet', await subnet4(), net]);
  assert.equal(c.code, 0, c.stderr);
  const n = JSON.parse((await fx.d.silo(['network', 'inspect', net])).stdout)[0];
  const s6 = n.Ipams[0].Subnets[1];
  assert.match(s6.IpAddressPrefix, /^fd[0-9a-f]{2}:[0-9a-f:]*\/64$/);
  const p = randomPort();
  const r = await fx.d.silo(['run', '-d', '--name', `${tag}-s`, '--network', net, '-p', `[::]:${p}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  assert.equal(r.code, 0, r.stderr);
  const hostname = (await fx.d.silo(['exec', `${tag}-s`, 'hostname'])).stdout;
  assert.equal(await curl(`http://[${s6.GatewayAddress}]:${p}/hostname`), hostname);
  // A daemon killed and started again rebuilds the table with the IPv6 elements; the container kept its address.
  await fx.d.kill();
  await fx.start();
  assert.equal(await curl(`http://[${s6.GatewayAddress}]:${p}/hostname`), hostname);
  assert.match((await fx.d.silo(['exec', `${tag}-s`, 'ip', '-6', 'addr', 'show', 'eth0'])).stdout, new RegExp(s6.IpAddressPrefix.replace(/::\/64$/, '::')));
  const v4 = await fx.d.silo(['run', '--rm', '-p', `[::]:${randomPort()}:80`, 'busybox', 'true']);
  assert.equal(v4.code, 125);
  assert.match(v4.stderr, /has no IPv6 subnet/);
});
