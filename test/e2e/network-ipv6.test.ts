// Dual-stack networks through the network service (the native API's shape: a second, IPv6 subnet): endpoints with an
// IPv6 address and default route, outbound NAT and its exceptions, ACLs and published ports on IPv6, AAAA answers;
// an IPv6 host address on an IPv4-only network, or ::1, is refused. Only unique-local addresses, in namespaces made here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { run } from '../../src/common/exec.js';
import { Fixture, ula64 } from './network-fixture.js';

const prefixOf = (cidr: string) => cidr.replace(/::\/64$/, '::');

test('a dual-stack network: IPv6 addresses, default route, outbound NAT, ACLs, [::] ports, AAAA', async () => {
  assert.equal((await readFile('/proc/sys/net/ipv6/conf/lo/disable_ipv6', 'utf8')).trim(), '0', 'this test needs IPv6 on (the refusal without it is unit-tested)');
  const f = new Fixture();
  try {
    const svc = await f.open();
    const s4 = await f.freeSubnet();
    const s6 = ula64();
    const net = await svc.createNetwork({ Name: 'dual', Type: 'nat', Subnets: [{ IpAddressPrefix: s4 }, { IpAddressPrefix: s6 }] });
    const gw6 = `${prefixOf(s6)}1`;
    assert.deepEqual(net.Ipams[0].Subnets[1], { IpAddressPrefix: s6, GatewayAddress: gw6 });
    assert.match((await run('ip', ['-6', 'addr', 'show', 'dev', net.Bridge])).stdout, new RegExp(`inet6 ${gw6}/64`));

    const web = await f.container('dual', 'web');
    const host = web.ep.IpAddress.split('.')[3];
    assert.equal(web.ep.Ipv6Address, `${prefixOf(s6)}${Number(host).toString(16)}`);
    assert.equal(web.ep.Ipv6GatewayAddress, gw6);
    const inside = await f.exec(web.ns, ['ip', '-6', 'route', 'show', 'default']);
    assert.match(inside.stdout, new RegExp(`default via ${gw6} dev eth0`));
    await f.httpd(web.ns, 'web-page');

    // Another container reaches it by name over IPv6: the network's DNS server answers AAAA.
    const cli = await f.container('dual', 'cli');
    const look = await f.exec(cli.ns, ['busybox', 'nslookup', '-type=AAAA', 'web']);
    assert.match(look.stdout, new RegExp(web.ep.Ipv6Address!), look.stdout + look.stderr);
    assert.equal(await f.fetch(cli.ns, `http://[${web.ep.Ipv6Address}]/`), 'web-page');

    // Published on every IPv6 address ([::]): the bridge's gateway is one of the host's addresses.
    const port = 20000 + (randomBytes(2).readUInt16BE() % 20000);
    await svc.modifyEndpoint(web.ep.Id, { RequestType: 'Add', Policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port, HostIp: '::' } }] });
    assert.equal(await f.fetch(undefined, `http://[${gw6}]:${port}/`), 'web-page');
    assert.equal(await f.fetch(undefined, `http://${net.Ipams[0].Subnets[0].GatewayAddress}:${port}/`, 1), undefined, '[::] is IPv6 only');
    // On every address (no HostIp): both families.
    await svc.modifyEndpoint(web.ep.Id, { RequestType: 'Update', Policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port } }] });
    assert.equal(await f.fetch(undefined, `http://[${gw6}]:${port}/`), 'web-page');
    assert.equal(await f.fetch(undefined, `http://127.0.0.1:${port}/`), 'web-page');
    await assert.rejects(
      svc.modifyEndpoint(web.ep.Id, { RequestType: 'Add', Policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port + 1, HostIp: '::1' } }] }),
      /does not forward IPv6 loopback/,
    );

    // Outbound: masqueraded behind the host's side toward the outside; an exception keeps the container's address.
    const out = await f.peerNamespace('out');
    const o6 = ula64();
    await run('ip', ['addr', 'add', `${prefixOf(o6)}1/64`, 'dev', out.host, 'nodad']);
    await run('ip', ['-n', out.ns, 'addr', 'add', `${prefixOf(o6)}2/64`, 'dev', 'eth0', 'nodad']);
    await run('ip', ['-n', out.ns, 'route', 'add', s6, 'via', `${prefixOf(o6)}1`]);
    await f.httpd(out.ns, 'outside');
    const url = `http://[${prefixOf(o6)}2]/cgi-bin/addr`;
    assert.equal(await f.fetch(cli.ns, url), `[${prefixOf(o6)}1]`);
    await svc.modifyEndpoint(cli.ep.Id, { RequestType: 'Add', Policies: [{ Type: 'OutBoundNAT', Settings: { Exceptions: [o6] } }] });
    assert.equal(await f.fetch(cli.ns, url), `[${cli.ep.Ipv6Address}]`);

    // An ACL holds on IPv6 as on IPv4: blocking the outside's subnet blocks it.
    await svc.modifyEndpoint(cli.ep.Id, { RequestType: 'Add', Policies: [{ Type: 'ACL', Settings: { Action: 'Block', Direction: 'Out', RemoteAddresses: o6 } }] });
    assert.equal(await f.fetch(cli.ns, url, 1), undefined);
    assert.equal(await f.fetch(cli.ns, `http://[${web.ep.Ipv6Address}]/`), 'web-page', 'only what the ACL names');

    // An IPv4-only network: an IPv6 host address is refused, saying why.
    await svc.createNetwork({ Name: 'v4only', Type: 'nat', Subnets: [{ IpAddressPrefix: await f.freeSubnet() }] });
    await assert.rejects(
      svc.createEndpoint('v4only', { name: 'x', policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port + 2, HostIp: '::' } }] }),
      /has no IPv6 subnet and Silo has no userland proxy/,
    );
    await assert.rejects(svc.createNetwork({ Name: 'clash', Type: 'nat', Subnets: [{ IpAddressPrefix: await f.freeSubnet() }, { IpAddressPrefix: s6 }] }), /overlaps network subnet/);
    await assert.rejects(svc.createNetwork({ Name: 'host6', Type: 'nat', Subnets: [{ IpAddressPrefix: await f.freeSubnet() }, { IpAddressPrefix: 'fd00::/64' }] }), /overlaps the host's route/);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});
