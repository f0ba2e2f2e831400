// Daemon restart: the stored objects are re-made in the kernel, orphans carrying the prefix are removed, the default
// nat network exists, and the IPAM does not hand out an address again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/common/exec.js';
import { openNetworkService, DEFAULT_NETWORK } from '../../src/network/index.js';
import { ownerAlias } from '../../src/network/names.js';
import { Fixture } from './network-fixture.js';

test('reconcile re-makes missing pieces, removes orphans and keeps addresses unique', async () => {
  const f = new Fixture();
  try {
    const svc = await f.open({ defaultNetwork: true });
    const nat = svc.getNetwork(DEFAULT_NETWORK);
    assert.equal(nat.Type, 'nat');
    const web = await f.container(DEFAULT_NETWORK, 'web');
    const client = await f.container(DEFAULT_NETWORK, 'client');
    await f.httpd(web.ns, 'alive\n');
    await svc.modifyEndpoint(web.ep.Id, { RequestType: 'Add', Policies: [{ Type: 'PortMapping', Settings: { Protocol: 'tcp', InternalPort: 80, ExternalPort: 28080 } }] });
    const gone = await svc.createEndpoint(DEFAULT_NETWORK, { name: 'gone' });
    await svc.deleteEndpoint(gone.Id);
    await svc.close();

    // While the daemon is down: the table and the client's veth vanish, orphans with the prefix appear.
    await run('nft', ['delete', 'table', 'inet', f.prefix]);
    await run('ip', ['link', 'del', client.ep.HostInterface]);
    const orphan = `${f.tag}dead`;
    await run('ip', ['link', 'add', orphan, 'type', 'bridge']);
    await run('ip', ['link', 'set', orphan, 'alias', ownerAlias(f.prefix, 'ep', 'f'.repeat(64))]);
    const orphanNs = `${f.prefix}-${'e'.repeat(12)}`;
    await run('ip', ['netns', 'add', orphanNs]);
    // A link with a look-alike name but no ownership mark must survive.
    const stranger = `${f.tag}keep`;
    await run('ip', ['link', 'add', stranger, 'type', 'bridge']);

    try {
      const svc2 = await openNetworkService({ stateDir: f.stateDir, runDir: f.runDir, prefix: f.prefix, defaultNetwork: true });
      f.svc = svc2;
      assert.equal(svc2.listNetworks().length, 1, 'the default network is not created twice');
      assert.equal(await f.fetch(client.ns, 'http://web/'), 'alive\n');
      assert.equal(await f.fetch(undefined, 'http://127.0.0.1:28080/'), 'alive\n');
      const links = (await run('ip', ['-o', 'link'])).stdout;
      assert.doesNotMatch(links, new RegExp(`${orphan}[:@]`));
      assert.match(links, new RegExp(`${stranger}[:@]`));
      assert.doesNotMatch((await run('ip', ['netns', 'list'])).stdout, new RegExp(orphanNs));
      const next = await svc2.createEndpoint(DEFAULT_NETWORK, { name: 'next' });
      assert.ok(![web.ep.IpAddress, client.ep.IpAddress, gone.IpAddress].includes(next.IpAddress), 'no address handed out twice');
    } finally {
      await run('ip', ['link', 'del', stranger], { allowFail: true });
    }
  } finally {
    assert.deepEqual(await f.cleanup(), []);
  }
});
