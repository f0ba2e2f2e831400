// Outbound NAT: a container's traffic to an "outside" namespace arrives from the host-side address, except toward an
// OutBoundNAT exception, which sees the container's own address.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/common/exec.js';
import { Fixture } from './network-fixture.js';

test('outbound NAT shows the host-side address, exceptions keep the container address', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    const outside = await f.peerNamespace('out');
    await f.httpd(outside.ns, 'outside');
    const net = await svc.createNetwork({ Name: 'egress', Type: 'nat' });
    // The outside can route back to the container subnet, so an un-NATed exception still gets its replies.
    await f.exec(outside.ns, ['ip', 'route', 'add', net.Ipams[0].Subnets[0].IpAddressPrefix, 'via', outside.hostIp]);
    const a = await f.container('egress', 'a');
    const url = `http://${outside.nsIp}/cgi-bin/addr`;

    assert.equal(await f.clientAddr(a.ns, url), outside.hostIp);

    await svc.modifyEndpoint(a.ep.Id, { RequestType: 'Add', Policies: [{ Type: 'OutBoundNAT', Settings: { Exceptions: [outside.subnet] } }] });
    assert.equal(await f.clientAddr(a.ns, url), a.ep.IpAddress);

    await svc.modifyEndpoint(a.ep.Id, { RequestType: 'Update', Policies: [] });
    assert.equal(await f.clientAddr(a.ns, url), outside.hostIp);

    // A network-wide exception applies to every endpoint of the network.
    const net2 = await svc.createNetwork({ Name: 'direct', Type: 'nat', Policies: [{ Type: 'OutBoundNAT', Settings: { Exceptions: [outside.subnet] } }] });
    await f.exec(outside.ns, ['ip', 'route', 'add', net2.Ipams[0].Subnets[0].IpAddressPrefix, 'via', outside.hostIp]);
    const b = await f.container('direct', 'b');
    assert.equal(await f.clientAddr(b.ns, url), b.ep.IpAddress);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});

test('an l2bridge network puts containers on the host interface\'s LAN, without NAT', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    // The "LAN": a namespace behind a veth whose host side carries no address and becomes the bridge's uplink.
    const lan = await f.peerNamespace('lan', false);
    await f.httpd(lan.ns, 'lan');
    const net = await svc.createNetwork({
      Name: 'lan',
      Type: 'l2bridge',
      Interface: lan.host,
      Subnets: [{ IpAddressPrefix: lan.subnet, GatewayAddress: lan.nsIp }],
      Dns: { ServerList: ['192.0.2.53'] },
    });
    assert.match((await run('ip', ['-o', 'link', 'show', lan.host])).stdout, new RegExp(`master ${net.Bridge}`));
    const a = await f.container('lan', 'a');
    assert.equal(a.ep.GatewayAddress, lan.nsIp);
    assert.equal(await f.clientAddr(a.ns, `http://${lan.nsIp}/cgi-bin/addr`), a.ep.IpAddress);
    assert.match(svc.resolvConf(a.ep.Id), /nameserver 192\.0\.2\.53/);

    await svc.deleteNamespace(svc.getEndpoint(a.ep.Id).NamespaceId!);
    await svc.deleteEndpoint(a.ep.Id);
    await svc.deleteNetwork('lan');
    assert.doesNotMatch((await run('ip', ['-o', 'link', 'show', lan.host])).stdout, /master/);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});
