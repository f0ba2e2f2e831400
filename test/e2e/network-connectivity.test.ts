// Two containers on one nat network reach each other by IP and by name through the network's DNS server; names not
// on the network are forwarded upstream; an internal network has no way out; a network in use cannot be removed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import * as dnsPacket from 'dns-packet';
import { Fixture } from './network-fixture.js';

/** A fake upstream resolver on 127.0.0.1 that answers every A query with 192.0.2.77. */
async function fakeUpstream(): Promise<{ addr: string; close: () => void }> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
      answers: q.questions!.filter((x) => x.type === 'A').map((x) => ({ type: 'A' as const, name: x.name, ttl: 5, data: '192.0.2.77' })),
    });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { addr: `127.0.0.1:${sock.address().port}`, close: () => sock.close() };
}

test('containers on one network reach each other by IP and by name', async () => {
  const f = new Fixture();
  const up = await fakeUpstream();
  try {
    const svc = await f.open({ dnsUpstreams: [up.addr] });
    const net = await svc.createNetwork({ Name: 'front', Type: 'nat' });
    const web = await f.container('front', 'web', { aliases: ['www'] });
    const client = await f.container('front', 'client');
    await f.httpd(web.ns, 'hello from web\n');

    assert.equal(await f.fetch(client.ns, `http://${web.ep.IpAddress}/`), 'hello from web\n');
    assert.equal(await f.fetch(client.ns, 'http://web/'), 'hello from web\n');
    assert.equal(await f.fetch(client.ns, 'http://www/'), 'hello from web\n');

    const gw = net.Ipams[0].Subnets[0].GatewayAddress!;
    const ns1 = await f.exec(client.ns, ['busybox', 'nslookup', 'web', gw]);
    assert.match(ns1.stdout, new RegExp(web.ep.IpAddress.replace(/\./g, '\\.')));
    // Not a container name: forwarded to the upstream resolver (here a fake one on the host's loopback).
    const ns2 = await f.exec(client.ns, ['busybox', 'nslookup', 'example.invalid', gw]);
    assert.match(ns2.stdout, /192\.0\.2\.77/);
    assert.match(svc.resolvConf(client.ep.Id), new RegExp(`nameserver ${gw.replace(/\./g, '\\.')}`));

    const files = await svc.writeEtcFiles(client.ep.Id);
    assert.deepEqual(files.map((x) => x.containerPath), ['/etc/resolv.conf', '/etc/hosts']);
    assert.equal(await readFile(files[0].hostPath, 'utf8'), svc.resolvConf(client.ep.Id));

    await assert.rejects(svc.deleteNetwork('front'), /network front has active endpoints/);
  } finally {
    up.close();
    assert.deepEqual(await f.cleanup(), []);
  }
});

test('an internal network has no way out, a nat network does', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    const outside = await f.peerNamespace('out');
    await f.httpd(outside.ns, 'outside\n');
    // The outside namespace can route back to any test subnet, so only Silo's rules can stop the traffic.
    await f.exec(outside.ns, ['ip', 'route', 'add', '10.200.0.0/13', 'via', outside.hostIp]);
    await svc.createNetwork({ Name: 'open', Type: 'nat' });
    const inet = await svc.createNetwork({ Name: 'sealed', Type: 'internal' });
    const a = await f.container('open', 'a');
    const b = await f.container('sealed', 'b');
    const c = await f.container('sealed', 'c');
    await f.httpd(c.ns, 'inside\n');

    assert.equal(await f.fetch(a.ns, `http://${outside.nsIp}/`), 'outside\n');
    assert.equal(await f.fetch(b.ns, `http://${outside.nsIp}/`), undefined);
    // Inside the internal network traffic flows, by name too.
    assert.equal(await f.fetch(b.ns, 'http://c/'), 'inside\n');
    // Nothing crosses between networks, and the outside cannot come in.
    assert.equal(await f.fetch(a.ns, `http://${c.ep.IpAddress}/`), undefined);
    assert.equal(await f.fetch(outside.ns, `http://${c.ep.IpAddress}/`), undefined);
    // No forwarding of outside names either.
    const gw = inet.Ipams[0].Subnets[0].GatewayAddress!;
    const r = await f.exec(b.ns, ['busybox', 'nslookup', 'example.invalid', gw]);
    assert.doesNotMatch(r.stdout, /Address: 192\.0\.2/);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});
