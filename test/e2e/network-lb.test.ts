// A load balancer over three backends answers from all three, stops sending to a removed one, and with SourceIP
// distribution keeps one client on one backend.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { Fixture } from './network-fixture.js';

async function collect(f: Fixture, ns: string, url: string, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await f.fetch(ns, url)) ?? 'FAILED');
  return seen;
}

test('a load balancer spreads over its backends and follows backend changes', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open();
    await svc.createNetwork({ Name: 'svc', Type: 'nat' });
    const backends = [];
    for (const i of [1, 2, 3]) {
      const b = await f.container('svc', `backend${i}`);
      await f.httpd(b.ns, `backend${i}`);
      backends.push(b);
    }
    const client = await f.container('svc', 'client');
    // A VIP outside every subnet (198.18.0.0/15 is for tests): the client sends it to its gateway, where the
    // host's prerouting DNATs it; nothing is ever sent to the VIP itself.
    const vip = `198.18.${randomInt(256)}.${randomInt(1, 255)}`;
    const lb = await svc.createLoadBalancer({
      Name: 'web',
      FrontendVIPs: [vip],
      PortMappings: [
        { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 },
        { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8081, DistributionType: 'SourceIP' },
      ],
      Endpoints: backends.map((b) => b.ep.Id),
    });
    assert.deepEqual(await collect(f, client.ns, `http://${vip}:8080/`, 30), new Set(['backend1', 'backend2', 'backend3']));
    assert.equal((await collect(f, client.ns, `http://${vip}:8081/`, 10)).size, 1, 'SourceIP is sticky');

    await svc.removeBackends(lb.Id, [backends[1].ep.Id]);
    assert.deepEqual(await collect(f, client.ns, `http://${vip}:8080/`, 30), new Set(['backend1', 'backend3']));

    await svc.addBackends(lb.Id, [backends[1].ep.Id]);
    assert.deepEqual(await collect(f, client.ns, `http://${vip}:8080/`, 30), new Set(['backend1', 'backend2', 'backend3']));

    // Deleting a backend endpoint takes it out of the load balancer too.
    await svc.deleteNamespace(svc.getEndpoint(backends[2].ep.Id).NamespaceId!);
    await svc.deleteEndpoint(backends[2].ep.Id);
    assert.deepEqual(svc.getLoadBalancer(lb.Id).Endpoints, [backends[0].ep.Id, backends[1].ep.Id]);
    assert.deepEqual(await collect(f, client.ns, `http://${vip}:8080/`, 20), new Set(['backend1', 'backend2']));

    await svc.deleteLoadBalancer(lb.Id);
    assert.equal(await f.fetch(client.ns, `http://${vip}:8080/`, 1), undefined);
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});
