// Two daemons that choose a subnet at the same moment both see it free, since neither bridge has its route yet. Two
// network services (two prefixes, as two daemons) create a network each at once from the same two candidates: they
// must end with different subnets, neither failing on the gateway's DNS address the other holds.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from './network-fixture.js';

const [f1, f2] = [new Fixture(), new Fixture()];
after(async () => {
  assert.deepEqual(await f1.cleanup(), []);
  assert.deepEqual(await f2.cleanup(), []);
});

test('two daemons creating a network at the same moment take different subnets', async () => {
  const pool = [await f1.freeSubnet(), await f1.freeSubnet()];
  const [s1, s2] = [await f1.open({ subnetPool: pool }), await f2.open({ subnetPool: pool })];
  const [n1, n2] = await Promise.all([s1.createNetwork({ Name: 'race', Type: 'nat' }), s2.createNetwork({ Name: 'race', Type: 'nat' })]);
  const got = [n1.Ipams[0].Subnets[0].IpAddressPrefix, n2.Ipams[0].Subnets[0].IpAddressPrefix].sort();
  assert.deepEqual(got, [...pool].sort());
  await s1.deleteNetwork(n1.Id);
  await s2.deleteNetwork(n2.Id);
});
