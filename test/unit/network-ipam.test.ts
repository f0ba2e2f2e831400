import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocate, newIpam, prune, release } from '../../src/network/ipam.js';
import { chooseSubnet, defaultCandidates, lostSubnetRace } from '../../src/network/subnets.js';
import { formatIp, overlaps, parseCidr, parseIp } from '../../src/network/ipv4.js';

test('ipv4 parsing and overlap', () => {
  assert.equal(formatIp(parseIp('10.88.1.2')), '10.88.1.2');
  assert.throws(() => parseIp('10.88.1.256'));
  assert.throws(() => parseCidr('10.88.0.1/16'), /host bits/);
  assert.deepEqual(parseCidr('10.88.0.1/16', true), { base: parseIp('10.88.0.0'), len: 16 });
  assert.ok(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.88.0.0/16')));
  assert.ok(!overlaps(parseCidr('10.89.0.0/16'), parseCidr('10.88.0.0/16')));
});

test('ipam skips network, gateway and broadcast and walks on from its cursor', () => {
  let s = newIpam('10.1.2.0/29', '10.1.2.1');
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = allocate(s, `ep${i}`);
    s = r.state;
    got.push(r.ip);
  }
  assert.deepEqual(got, ['10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6']);
  assert.throws(() => allocate(s, 'x'), /no free address/);
  s = release(s, '10.1.2.3');
  s = release(s, '10.1.2.5');
  // Next-fit: the cursor wrapped, the lowest freed address comes first only after the range was walked.
  const r = allocate(s, 'y');
  assert.equal(r.ip, '10.1.2.3');
  assert.equal(allocate(r.state, 'z').ip, '10.1.2.5');
});

test('ipam does not reuse a released address before the range is walked', () => {
  let s = newIpam('10.1.0.0/24', '10.1.0.1');
  const a = allocate(s, 'a');
  s = release(a.state, a.ip);
  const b = allocate(s, 'b');
  assert.notEqual(b.ip, a.ip);
});

test('ipam static addresses are checked', () => {
  const s = newIpam('10.1.0.0/24', '10.1.0.1');
  assert.throws(() => allocate(s, 'a', '10.2.0.5'), /not in subnet/);
  assert.throws(() => allocate(s, 'a', '10.1.0.1'), /reserved/);
  const r = allocate(s, 'a', '10.1.0.9');
  assert.throws(() => allocate(r.state, 'b', '10.1.0.9'), /already in use/);
  // A dynamic allocation never returns a statically taken one.
  let t = r.state;
  for (let i = 0; i < 20; i++) {
    const x = allocate(t, `d${i}`);
    assert.notEqual(x.ip, '10.1.0.9');
    t = x.state;
  }
});

test('ipam prune drops allocations of owners that do not exist', () => {
  let s = newIpam('10.1.0.0/24');
  s = allocate(s, 'live').state;
  s = allocate(s, 'dead').state;
  assert.deepEqual(Object.values(prune(s, (o) => o === 'live').allocated), ['live']);
});

test('subnet choice avoids host routes and taken subnets, ignores the default route', () => {
  const c = defaultCandidates();
  assert.equal(c[0], '10.88.0.0/16');
  assert.ok(c.includes('172.17.0.0/16'));
  assert.equal(chooseSubnet(c, ['0.0.0.0/0', '192.0.2.0/24'], []), '10.88.0.0/16');
  assert.equal(chooseSubnet(c, ['10.88.4.0/24'], ['10.89.0.0/16']), '10.90.0.0/16');
  assert.equal(chooseSubnet(c, ['10.0.0.0/8'], []), '172.17.0.0/16');
  assert.equal(chooseSubnet(c, ['172.17.0.1'], ['10.0.0.0/8']), '172.18.0.0/16');
  assert.throws(() => chooseSubnet(['10.88.0.0/16'], ['10.0.0.0/8'], []), /no free subnet/);
});

test('ipam: automatic addresses only from the ip-range, reserved (auxiliary) addresses never handed out', () => {
  let s = newIpam('10.1.0.0/24', '10.1.0.1', '10.1.0.128/30', ['10.1.0.129']);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = allocate(s, `ep${i}`);
    s = r.state;
    got.push(r.ip);
  }
  assert.deepEqual(got, ['10.1.0.128', '10.1.0.130', '10.1.0.131']);
  assert.throws(() => allocate(s, 'full'), /range 10\.1\.0\.128\/30\) has no free address/);
  // A fixed address may lie outside the range, but never on a reserved one.
  assert.equal(allocate(s, 'fixed', '10.1.0.5').ip, '10.1.0.5');
  assert.throws(() => allocate(s, 'aux', '10.1.0.129'), /reserved/);
});

test('of two bridges that took the same subnet at once, the one made later yields', () => {
  const first = { ifname: 'silo1a2bbr0', ifindex: 40 };
  const second = { ifname: 'silo3c4dbr0', ifindex: 41 };
  assert.equal(lostSubnetRace([first, second], second.ifname), true);
  assert.equal(lostSubnetRace([first, second], first.ifname), false);
  assert.equal(lostSubnetRace([first], first.ifname), false, 'alone: keeps it');
  assert.equal(lostSubnetRace([first], 'silo9999br0'), true, 'ours has no address there at all');
});
