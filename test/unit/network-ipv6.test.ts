import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import { formatIp6, parseCidr6, parseIp6, contains6, overlaps6 } from '../../src/network/ipv6.js';
import { checkSubnet6, ipv6For, ipv6Unavailable, normalCidr, randomUla } from '../../src/network/dualstack.js';
import { decide } from '../../src/network/dns/answer.js';
import { portsCollide } from '../../src/network/policies.js';
import type { Network } from '../../src/network/types.js';

test('IPv6 text: parsed with "::" and an IPv4 tail, written as RFC 5952 says', () => {
  for (const [inp, out] of [
    ['fd00:0:0:0:0:0:0:5', 'fd00::5'], ['::', '::'], ['::1', '::1'], ['FD12:3456::', 'fd12:3456::'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'], ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'], ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
  ]) assert.equal(formatIp6(parseIp6(inp)), out, inp);
  for (const bad of ['1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '', ':::', '1.2.3.4', '::1.2.3']) assert.throws(() => parseIp6(bad), /not an IPv6 address/, bad);
  const c = parseCidr6('fd12:3456::/64');
  assert.ok(contains6(c, parseIp6('fd12:3456::ffff:1')));
  assert.ok(!contains6(c, parseIp6('fd12:3457::1')));
  assert.ok(overlaps6(c, parseCidr6('fd12::/16')));
  assert.throws(() => parseCidr6('fd12:3456::1/64'), /host bits/);
  assert.equal(normalCidr('FD12:3456:0::1/64'), 'fd12:3456::/64');
  assert.equal(normalCidr('10.1.2.3/24'), '10.1.2.0/24');
});

test('a dual-stack endpoint\'s IPv6 address is the IPv6 prefix plus its IPv4 host part', () => {
  const n = { Ipams: [{ Type: 'Static', Subnets: [{ IpAddressPrefix: '10.1.2.0/24' }, { IpAddressPrefix: 'fd12:3456::/64' }] }] } as unknown as Network;
  assert.equal(ipv6For(n, '10.1.2.5'), 'fd12:3456::5');
  assert.equal(ipv6For(n, '10.1.2.254'), 'fd12:3456::fe');
  const v4only = { Ipams: [{ Type: 'Static', Subnets: [{ IpAddressPrefix: '10.1.2.0/24' }] }] } as unknown as Network;
  assert.equal(ipv6For(v4only, '10.1.2.5'), undefined);
});

test('an IPv6 subnet is checked against the IPv4 one, other networks and host routes', () => {
  const v4 = { IpAddressPrefix: '10.1.0.0/16', GatewayAddress: '10.1.0.1' };
  assert.deepEqual(checkSubnet6({ IpAddressPrefix: 'fd12:3456::/64' }, v4, [], []), { IpAddressPrefix: 'fd12:3456::/64', GatewayAddress: 'fd12:3456::1' });
  assert.throws(() => checkSubnet6({ IpAddressPrefix: 'fd12:3456::/120' }, v4, [], []), /smaller than IPv4 subnet/);
  assert.throws(() => checkSubnet6({ IpAddressPrefix: 'fd12:3456::/64' }, v4, ['fd12:3456::/48'], []), /overlaps network subnet/);
  assert.throws(() => checkSubnet6({ IpAddressPrefix: 'fd00::/64' }, v4, [], ['fd00::/64']), /overlaps the host's route/);
  assert.throws(() => checkSubnet6({ IpAddressPrefix: 'fd12:3456::/64', GatewayAddress: 'fd12:3456::9' }, v4, [], []), /an address a container may get/);
  assert.equal(checkSubnet6({ IpAddressPrefix: 'fd12:3456::/64', GatewayAddress: 'fd12:3456::1:0:0' }, v4, [], []).GatewayAddress, 'fd12:3456::1:0:0');
  assert.throws(() => checkSubnet6({ IpAddressPrefix: 'fd12:3456::/64', IpRange: 'fd12:3456::/80' }, v4, [], []), /no IP range/);
  const auto = checkSubnet6(undefined, v4, [], ['fd00::/64']);
  assert.match(auto.IpAddressPrefix, /^fd[0-9a-f]{2}:[0-9a-f:]+\/64$/);
  let n = 0;
  const fixed = () => Buffer.from(n++ === 0 ? [0, 0, 0, 0, 0, 0, 0] : [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(randomUla(['fd00::/48'], fixed), 'fd01:203:405:607::/64', 'a clash draws again');
});

test('IPv6 turned off on the host is one clear reason', async () => {
  const sys = (vals: Record<string, string>) => async (p: string) => {
    if (!(p in vals)) throw new Error('ENOENT');
    return vals[p];
  };
  const all = '/proc/sys/net/ipv6/conf/all/disable_ipv6';
  const lo = '/proc/sys/net/ipv6/conf/lo/disable_ipv6';
  assert.equal(await ipv6Unavailable(sys({ [all]: '0\n', [lo]: '0\n' })), undefined);
  assert.match((await ipv6Unavailable(sys({ [all]: '0\n', [lo]: '1\n' })))!, /net\.ipv6\.conf\.lo\.disable_ipv6 = 1/);
  assert.match((await ipv6Unavailable(sys({})))!, /no IPv6 stack/);
});

test('DNS: a container name answers A with its IPv4 and AAAA with its IPv6 addresses', () => {
  const ask = (type: 'A' | 'AAAA') => {
    const d = decide(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type, name: 'web', class: 'IN' }] }), () => ['10.1.2.5', 'fd12:3456::5']);
    assert.equal(d.kind, 'answer');
    return dnsPacket.decode((d as { reply: Buffer }).reply).answers!.map((a) => `${a.type} ${(a as { data: string }).data}`);
  };
  assert.deepEqual(ask('A'), ['A 10.1.2.5']);
  assert.deepEqual(ask('AAAA'), ['AAAA fd12:3456::5']);
});

test('[::] collides with any IPv6 host address on the same port, not with an IPv4 one', () => {
  const pm = (HostIp?: string) => ({ Protocol: 'tcp', ExternalPort: 8080, ...(HostIp ? { HostIp } : {}) });
  assert.ok(portsCollide(pm('::'), pm('fd12::1')));
  assert.ok(portsCollide(pm(), pm('::')));
  assert.ok(!portsCollide(pm('::'), pm('10.0.0.1')));
  assert.ok(!portsCollide(pm('fd12::1'), pm('fd12::2')));
});
