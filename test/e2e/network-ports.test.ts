// Port mappings answer from a separate namespace routed to the host, from the host's 127.0.0.1 and from another
// container, with no proxy process; an ACL block drops traffic and removing it restores it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { Fixture } from './network-fixture.js';

test('a port mapping answers from another namespace, from 127.0.0.1 and from a container', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    await svc.createNetwork({ Name: 'pub', Type: 'nat' });
    const hostns = await f.peerNamespace('hst');
    const port = randomInt(20000, 30000);
    const boundPort = port + 1;
    const web = await f.container('pub', 'web');
    await f.httpd(web.ns, 'published\n');
    await svc.modifyEndpoint(web.ep.Id, {
      RequestType: 'Add',
      Policies: [
        { Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port } },
        { Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: boundPort, HostIp: hostns.hostIp } },
      ],
    });
    const other = await f.container('pub', 'other');

    assert.equal(await f.fetch(hostns.ns, `http://${hostns.hostIp}:${port}/`), 'published\n');
    assert.equal(await f.fetch(undefined, `http://127.0.0.1:${port}/`), 'published\n');
    assert.equal(await f.fetch(other.ns, `http://${web.ep.GatewayAddress}:${port}/`), 'published\n');
    // Hairpin: the container reaches itself through the host's published port.
    assert.equal(await f.fetch(web.ns, `http://${hostns.hostIp}:${port}/`), 'published\n');
    // The HostIp-bound mapping answers on that address only.
    assert.equal(await f.fetch(hostns.ns, `http://${hostns.hostIp}:${boundPort}/`), 'published\n');
    assert.equal(await f.fetch(undefined, `http://127.0.0.1:${boundPort}/`, 1), undefined);
    // The source seen by the container: the other namespace's own address (not rewritten) for outside clients.
    assert.equal(await f.clientAddr(hostns.ns, `http://${hostns.hostIp}:${port}/cgi-bin/addr`), hostns.nsIp);

    await assert.rejects(
      svc.createEndpoint('pub', { name: 'dup', policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port } }] }),
      /already mapped by web/,
    );
    await svc.modifyEndpoint(web.ep.Id, {
      RequestType: 'Remove',
      Policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: port } }],
    });
    assert.equal(await f.fetch(undefined, `http://127.0.0.1:${port}/`, 1), undefined);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});

test('an ACL block drops traffic and removing it restores it', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    await svc.createNetwork({ Name: 'acl', Type: 'nat' });
    const web = await f.container('acl', 'web');
    const a = await f.container('acl', 'a');
    const b = await f.container('acl', 'b');
    await f.httpd(web.ns, 'ok\n');
    assert.equal(await f.fetch(a.ns, 'http://web/'), 'ok\n');

    const block = { Type: 'ACL' as const, Settings: { Action: 'Block' as const, Direction: 'In' as const, Protocols: '6', LocalPorts: '80', RemoteAddresses: `${a.ep.IpAddress}/32` } };
    await svc.modifyEndpoint(web.ep.Id, { RequestType: 'Add', Policies: [block] });
    assert.equal(await f.fetch(a.ns, 'http://web/', 1), undefined);
    assert.equal(await f.fetch(b.ns, 'http://web/'), 'ok\n', 'only the blocked remote is dropped');

    // An outbound block on the client side works the same way, and an Allow carves an exception out of a Block.
    const out = { Type: 'ACL' as const, Settings: { Action: 'Block' as const, Direction: 'Out' as const, RemotePorts: '80' } };
    await svc.modifyEndpoint(b.ep.Id, { RequestType: 'Add', Policies: [out] });
    assert.equal(await f.fetch(b.ns, 'http://web/', 1), undefined);
    const allow = { Type: 'ACL' as const, Settings: { Action: 'Allow' as const, Direction: 'Out' as const, RemoteAddresses: web.ep.IpAddress } };
    await svc.modifyEndpoint(b.ep.Id, { RequestType: 'Add', Policies: [allow] });
    assert.equal(await f.fetch(b.ns, 'http://web/'), 'ok\n');

    await svc.modifyEndpoint(web.ep.Id, { RequestType: 'Remove', Policies: [block] });
    assert.equal(await f.fetch(a.ns, 'http://web/'), 'ok\n');
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});

test('ACLs that overlap partly are refused, identical ones are shared', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    await svc.createNetwork({ Name: 'acl2', Type: 'nat' });
    const ep = await svc.createEndpoint('acl2', { name: 'x' });
    const broad = { Type: 'ACL' as const, Settings: { Action: 'Block' as const, Direction: 'In' as const, LocalPorts: '80' } };
    const narrow = { Type: 'ACL' as const, Settings: { ...broad.Settings, RemoteAddresses: '10.0.0.0/8' } };
    await svc.modifyEndpoint(ep.Id, { RequestType: 'Add', Policies: [broad] });
    await assert.rejects(svc.modifyEndpoint(ep.Id, { RequestType: 'Add', Policies: [narrow] }), /overlaps an existing ACL/);
    assert.equal(svc.getEndpoint(ep.Id).Policies.length, 1);
    // The same ACL given twice (e.g. with another Priority) is one element, removed when the last one goes.
    const again = { Type: 'ACL' as const, Settings: { ...broad.Settings, Priority: 200 } };
    await svc.modifyEndpoint(ep.Id, { RequestType: 'Add', Policies: [again] });
    await svc.modifyEndpoint(ep.Id, { RequestType: 'Remove', Policies: [broad] });
    await svc.modifyEndpoint(ep.Id, { RequestType: 'Remove', Policies: [again] });
    assert.deepEqual(svc.getEndpoint(ep.Id).Policies, []);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});
