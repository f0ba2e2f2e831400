// Docker compatibility a user counts on (issue 15): what compose and everyday docker CLI use does as dockerd does.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DockerFixture, randomPort } from './docker-fixture.js';

const fx = new DockerFixture();
const docker = (args: string[], o?: Parameters<DockerFixture['run']>[1]) => fx.run(args, o);
const net = `cnet${process.pid}`;

before(async () => {
  await fx.start();
});

after(async () => {
  await docker(['rm', '-f', 'pc1', 'h1']);
  await docker(['network', 'rm', net, `${net}b`]);
  const left = await fx.teardown();
  assert.deepEqual(left, []);
});

async function httpStatus(port: number): Promise<number> {
  for (let i = 0; i < 40; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
    if (r) return r.status;
    await new Promise((res) => setTimeout(res, 100));
  }
  return 0;
}

test('published ports survive network disconnect + connect (what compose does at start)', async () => {
  assert.equal((await docker(['network', 'create', net])).code, 0);
  const port = randomPort();
  const c = await docker(['create', '--name', 'pc1', '--network', net, '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await docker(['network', 'disconnect', net, 'pc1'])).code, 0);
  assert.equal((await docker(['network', 'connect', net, 'pc1'])).code, 0);
  assert.equal((await docker(['start', 'pc1'])).code, 0);
  assert.equal(await httpStatus(port), 404); // busybox httpd answers: no index in /
  // Connected to a second network, then the first dropped: the ports move to the endpoint that is left.
  assert.equal((await docker(['network', 'create', `${net}b`])).code, 0);
  assert.equal((await docker(['network', 'connect', `${net}b`, 'pc1'])).code, 0);
  assert.equal((await docker(['network', 'disconnect', net, 'pc1'])).code, 0);
  assert.equal(await httpStatus(port), 404);
  await docker(['rm', '-f', 'pc1']);
});

test('network inspect shows only the options and labels the user set, and keeps them across a restart', async () => {
  const n = `${net}l`;
  assert.equal((await docker(['network', 'create', '--label', 'com.docker.compose.network=default', n])).code, 0);
  const show = () => docker(['network', 'inspect', n, '--format', '{{json .Options}} {{json .Labels}}']);
  assert.equal((await show()).stdout.trim(), '{} {"com.docker.compose.network":"default"}');
  await fx.d.kill();
  await fx.start();
  assert.equal((await show()).stdout.trim(), '{} {"com.docker.compose.network":"default"}');
  const bad = await docker(['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', `${n}x`]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /option com\.docker\.network\.bridge\.enable_icc is not supported/);
  assert.equal((await docker(['network', 'rm', n])).code, 0);
});
