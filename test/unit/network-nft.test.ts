import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aclElems, elementLines, endpointElems, lbFrontendElems, lbSlotLines, networkElems, portMappingElems } from '../../src/network/nft/elements.js';
import { LB_SLOTS, lbObjects, tableSkeleton } from '../../src/network/nft/ruleset.js';
import { rebalance } from '../../src/network/lbslots.js';
import type { Endpoint, LoadBalancer, Network } from '../../src/network/types.js';

const ep = { IpAddress: '10.88.0.5' };

test('a port mapping is one map element', () => {
  assert.deepEqual(portMappingElems(ep, { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 }), [{
    set: 'portmap_any',
    text: 'tcp . 8080 : 10.88.0.5 . 80',
  }]);
  assert.deepEqual(portMappingElems(ep, { Protocol: 'udp', InternalPort: 53, ExternalPort: 5353, HostIp: '192.0.2.2' }), [{
    set: 'portmap_ip',
    text: '192.0.2.2 . udp . 5353 : 10.88.0.5 . 53',
  }]);
});

test('a dual-stack endpoint: every address maps both families, [::] and an IPv6 host address only IPv6', () => {
  const ep6 = { IpAddress: '10.88.0.5', Ipv6Address: 'fd12:3456::5' };
  assert.deepEqual(portMappingElems(ep6, { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 }), [
    { set: 'portmap_any', text: 'tcp . 8080 : 10.88.0.5 . 80' },
    { set: 'portmap6_any', text: 'tcp . 8080 : fd12:3456::5 . 80' },
  ]);
  assert.deepEqual(portMappingElems(ep6, { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080, HostIp: '::' }), [{ set: 'portmap6_any', text: 'tcp . 8080 : fd12:3456::5 . 80' }]);
  assert.deepEqual(portMappingElems(ep6, { Protocol: 'udp', InternalPort: 53, ExternalPort: 53, HostIp: 'fd12:3456::1' }), [
    { set: 'portmap6_ip', text: 'fd12:3456::1 . udp . 53 : fd12:3456::5 . 53' },
  ]);
  // An ACL holds on both families by default; explicit addresses pair within their family.
  assert.deepEqual(aclElems(ep6, { Action: 'Block', Direction: 'Out' }).map((e) => e.set + ' ' + e.text), [
    'acl_out_block 10.88.0.5 . 0.0.0.0/0 . 0-255 . 0-65535 . 0-65535',
    'acl6_out_block fd12:3456::5 . ::/0 . 0-255 . 0-65535 . 0-65535',
  ]);
  assert.deepEqual(aclElems(ep6, { Action: 'Allow', Direction: 'In', RemoteAddresses: 'fd00:9::/64' }).map((e) => e.set + ' ' + e.text), [
    'acl6_in_allow fd12:3456::5 . fd00:9::/64 . 0-255 . 0-65535 . 0-65535',
  ]);
  const net = { Id: 'n', Name: 'n', Type: 'nat', Bridge: 'b', Dns: {}, CreatedAt: '', Ipams: [{ Type: 'Static', Subnets: [{ IpAddressPrefix: '10.88.0.0/16' }, { IpAddressPrefix: 'fd12:3456::/64' }] }],
    Policies: [{ Type: 'OutBoundNAT', Settings: { Exceptions: ['10.9.0.0/16', 'fd00:9::/64'] } }] } as unknown as Network;
  const sets = networkElems(net).map((e) => `${e.set} ${e.text}`);
  for (const want of ['nat_subnets 10.88.0.0/16', 'nat6_subnets fd12:3456::/64', 'nat_exceptions 10.88.0.0/16 . 10.9.0.0/16', 'nat6_exceptions fd12:3456::/64 . fd00:9::/64']) assert.ok(sets.includes(want), want);
});

test('ACLs become interval elements, wildcards as full ranges', () => {
  assert.deepEqual(aclElems(ep, { Action: 'Block', Direction: 'In', Protocols: 'tcp', LocalPorts: '80' }), [
    { set: 'acl_in_block', text: '10.88.0.5 . 0.0.0.0/0 . 6 . 80 . 0-65535' },
  ]);
  const many = aclElems(ep, { Action: 'Allow', Direction: 'Out', Protocols: '6,17', RemoteAddresses: '10.0.0.0/8', RemotePorts: '53,8000-8080' });
  assert.equal(many.length, 4);
  assert.ok(many.every((e) => e.set === 'acl_out_allow'));
  assert.ok(many.some((e) => e.text === '10.88.0.5 . 10.0.0.0/8 . 17 . 0-65535 . 8000-8080'));
  assert.throws(() => aclElems(ep, { Action: 'Block', Direction: 'In', LocalPorts: '70000' }), /bad port/);
  assert.throws(() => aclElems(ep, { Action: 'Block', Direction: 'In', Protocols: 'bogus' }), /unknown protocol/);
});

test('network membership elements depend on its type', () => {
  const base = { Id: 'n', Name: 'n', Ipams: [{ Type: 'Static' as const, Subnets: [{ IpAddressPrefix: '10.88.0.0/16', GatewayAddress: '10.88.0.1' }] }], Dns: {}, Bridge: 'silobr0', CreatedAt: '' };
  const nat: Network = { ...base, Type: 'nat', Policies: [{ Type: 'OutBoundNAT', Settings: { Exceptions: ['192.168.0.0/16'] } }] };
  assert.deepEqual(networkElems(nat).map((e) => `${e.set}:${e.text}`), [
    'bridges:"silobr0"',
    'bridge_pairs:"silobr0" . "silobr0"',
    'nat_subnets:10.88.0.0/16',
    'nat_exceptions:10.88.0.0/16 . 192.168.0.0/16',
  ]);
  const internal: Network = { ...base, Type: 'internal', Policies: [] };
  assert.ok(networkElems(internal).some((e) => e.set === 'internal_bridges'));
  assert.ok(!networkElems(internal).some((e) => e.set === 'nat_subnets'));
});

test('endpoint elements: OutBoundNAT only on nat networks, Route policies not in nft', () => {
  const e = {
    IpAddress: '10.88.0.5',
    Policies: [
      { Type: 'OutBoundNAT', Settings: { Exceptions: ['10.0.0.0/8'] } },
      { Type: 'Route', Settings: { DestinationPrefix: '10.9.0.0/16', NextHop: '10.88.0.9' } },
    ],
  } as Endpoint;
  assert.deepEqual(endpointElems(e, 'nat'), [{ set: 'nat_exceptions', text: '10.88.0.5 . 10.0.0.0/8' }]);
  assert.deepEqual(endpointElems(e, 'internal'), []);
});

test('element batches: one line per set; deletes carry keys only', () => {
  const elems = [
    { set: 'portmap_any', text: 'tcp . 1 : 10.0.0.1 . 80' },
    { set: 'portmap_any', text: 'tcp . 2 : 10.0.0.1 . 80' },
    { set: 'bridges', text: '"b"' },
  ];
  assert.equal(elementLines('add', 't', elems), 'add element inet t portmap_any { tcp . 1 : 10.0.0.1 . 80, tcp . 2 : 10.0.0.1 . 80 }\nadd element inet t bridges { "b" }\n');
  assert.equal(elementLines('delete', 't', elems.slice(0, 1)), 'delete element inet t portmap_any { tcp . 1 }\n');
  assert.equal(elementLines('add', 't', []), '');
});

test('load balancer objects and frontends', () => {
  const lb: LoadBalancer = {
    Id: 'abcdef0123456789',
    Name: 'x',
    FrontendVIPs: ['198.18.0.1'],
    PortMappings: [
      { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080, DistributionType: 'PerConnection' },
      { Protocol: 'udp', InternalPort: 53, ExternalPort: 53, DistributionType: 'SourceIP' },
    ],
    Endpoints: [],
    CreatedAt: '',
  };
  const objs = lbObjects('t', lb);
  assert.match(objs, /add map inet t lbm_abcdef012345 \{ typeof numgen random mod 1024 : ip daddr; \}/);
  assert.match(objs, /lb_abcdef012345_0 meta l4proto tcp dnat ip to numgen random mod 1024 map @lbm_abcdef012345 : 80/);
  assert.match(objs, /lb_abcdef012345_1 meta l4proto udp dnat ip to jhash ip saddr mod 1024 seed 0xabcdef01 map/);
  assert.deepEqual(lbFrontendElems(lb).map((e) => e.text), ['198.18.0.1 . tcp . 8080 : goto lb_abcdef012345_0', '198.18.0.1 . udp . 53 : goto lb_abcdef012345_1']);
  assert.equal(lbFrontendElems({ ...lb, FrontendVIPs: [] })[0].set, 'lb_ports');
  assert.equal(lbSlotLines('t', lb.Id, [3], ['a', 'b', 'c', '10.0.0.9'], [undefined, undefined, undefined, '10.0.0.8']),
    'delete element inet t lbm_abcdef012345 { 3 }\nadd element inet t lbm_abcdef012345 { 3 : 10.0.0.9 }\n');
  assert.match(tableSkeleton('silo'), /^table inet silo \{/);
});

test('slot rebalancing moves only what it must and keeps shares even', () => {
  const N = LB_SLOTS;
  const one = rebalance([], ['a'], N);
  assert.equal(one.changed.length, N);
  const two = rebalance(one.slots, ['a', 'b'], N);
  assert.equal(two.changed.length, N / 2);
  const three = rebalance(two.slots, ['a', 'b', 'c'], N);
  assert.ok(three.changed.length <= Math.ceil(N / 3));
  const count = (s: (string | undefined)[], b: string) => s.filter((x) => x === b).length;
  for (const b of ['a', 'b', 'c']) assert.ok(Math.abs(count(three.slots, b) - N / 3) <= 1);
  // Removing b: only b's slots move; a's and c's stay where they were (sticky clients keep their backend).
  const noB = rebalance(three.slots, ['a', 'c'], N);
  assert.equal(noB.changed.length, count(three.slots, 'b'));
  for (const i of noB.changed) assert.equal(three.slots[i], 'b');
  assert.deepEqual(rebalance(noB.slots, [], N).slots.filter((x) => x !== undefined), []);
  // Many backends: the k-th addition moves about N/k slots.
  let s: (string | undefined)[] = [];
  for (let k = 1; k <= 500; k++) {
    const r = rebalance(s, Array.from({ length: k }, (_, i) => `b${i}`), N);
    assert.ok(r.changed.length <= Math.ceil(N / k) + 1, `k=${k} moved ${r.changed.length}`);
    s = r.slots;
  }
  assert.throws(() => rebalance([], Array.from({ length: N + 1 }, (_, i) => `b${i}`), N), /at most/);
});
