// A Docker-door port binding left open (or 0) gets its host port from the network service, as HNS picks one: the
// port is in the kernel's ephemeral range, the container's inspect and the endpoint agree on it, traffic reaches the
// container through it, and a daemon restart keeps it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { TestDaemon } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
let dockerSock: string;
before(async () => {
  await d.start();
  dockerSock = `${d.runDir}/docker.sock`;
});
after(async () => {
  assert.deepEqual(await d.teardown(), []);
});

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (b) => (body += b));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout on port ${port}`)));
  });
}

async function fetchWithRetry(port: number): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await get(port);
    } catch (e) {
      if (i >= 40) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function run(name: string, body: Record<string, unknown>): Promise<string> {
  const c = await request(dockerSock, 'POST', `/containers/create?name=${name}`, {
    json: { Image: 'busybox', Cmd: ['sh', '-c', `echo ${name} > /tmp/index.html; exec httpd -f -p 80 -h /tmp`], ...body },
  });
  assert.equal(c.status, 201, c.body.toString());
  const s = await request(dockerSock, 'POST', `/containers/${name}/start`);
  assert.equal(s.status, 204, s.body.toString());
  return c.json.Id as string;
}

async function hostPorts(name: string): Promise<Record<string, number>> {
  const i = await request(dockerSock, 'GET', `/containers/${name}/json`);
  assert.equal(i.status, 200, i.body.toString());
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(i.json.NetworkSettings.Ports as Record<string, { HostPort: string }[] | null>)) {
    if (v?.length) out[k] = Number(v[0].HostPort);
  }
  return out;
}

test('a docker-door port of 0 gets a host port from the network service, which survives a restart', async () => {
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  await run('p0', { ExposedPorts: { '80/tcp': {} }, HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '' }], '8080/tcp': [{ HostPort: '0' }] } } });
  const ports = await hostPorts('p0');
  assert.deepEqual(Object.keys(ports).sort(), ['80/tcp', '8080/tcp']);
  for (const p of Object.values(ports)) assert.ok(p >= lo && p <= hi, `host port ${p} outside ${lo}-${hi}`);
  assert.notEqual(ports['80/tcp'], ports['8080/tcp']);

  // The network service's endpoint holds the same ports: it picked them.
  const eps = (await request(d.socket, 'GET', '/v1/endpoints')).json as { Name: string; Policies: { Type: string; Settings: { ExternalPort: number; InternalPort: number } }[] }[];
  const ep = eps.find((e) => e.Name === 'p0');
  assert.ok(ep);
  const mapped = ep.Policies.filter((p) => p.Type === 'PortMapping').map((p) => [p.Settings.InternalPort, p.Settings.ExternalPort]);
  assert.deepEqual(mapped.sort(), [[80, ports['80/tcp']], [8080, ports['8080/tcp']]].sort());
  assert.equal(await fetchWithRetry(ports['80/tcp']), 'p0\n');

  // -P (publish all) for a second container: another port, no clash.
  await run('pall', { ExposedPorts: { '80/tcp': {} }, HostConfig: { PublishAllPorts: true } });
  const all = await hostPorts('pall');
  assert.ok(all['80/tcp'] && !Object.values(ports).includes(all['80/tcp']), JSON.stringify({ ports, all }));
  assert.equal(await fetchWithRetry(all['80/tcp']), 'pall\n');

  // A SIGKILL and restart: the same ports, still answering.
  await d.kill();
  await d.start();
  assert.deepEqual(await hostPorts('p0'), ports);
  assert.equal(await fetchWithRetry(ports['80/tcp']), 'p0\n');
  assert.equal(await fetchWithRetry(all['80/tcp']), 'pall\n');
});
