// Debian's docker-compose 1.29 (docker-py underneath) brings up a realistic project on Silo, as against dockerd:
// a built web service with a healthcheck and a published port, a worker that waits for it to be healthy and reaches
// it by name, a named volume, two user networks, env and env_file, restart: unless-stopped, memory limit and
// reservation, a domain name.

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture, randomPort } from './docker-fixture.js';
import { runProcess } from './harness.js';

const fx = new DockerFixture();
const project = `silocompose${process.pid}`;
const port = randomPort();
let dir: string;

const compose = (args: string[], timeoutMs = 180_000) =>
  runProcess('docker-compose', ['-p', project, ...args], { cwd: dir, timeoutMs, env: { DOCKER_HOST: fx.host, COMPOSE_INTERACTIVE_NO_CLI: '1' } });

before(async () => {
  await fx.start();
  dir = await mkdtemp(join(tmpdir(), 'silo-compose-'));
  await mkdir(join(dir, 'web'));
  await writeFile(join(dir, 'web/index.html'), 'hello from compose\n');
  await writeFile(
    join(dir, 'web/Dockerfile'),
    'FROM busybox\nCOPY index.html /www/index.html\nHEALTHCHECK --interval=300ms --retries=3 CMD wget -qO- http://127.0.0.1/ || exit 1\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n',
  );
  await writeFile(join(dir, 'app.env'), 'GREETING=hi\n');
  await writeFile(
    join(dir, 'docker-compose.yml'),
    `version: "3.8"
services:
  web:
    build: ./web
    ports: ["127.0.0.1:${port}:80"]
    networks: [front, back]
    restart: unless-stopped
    environment:
      MODE: prod
    env_file: app.env
    volumes: ["data:/data"]
    mem_limit: 64m
    mem_reservation: 32m
    domainname: example.org
  worker:
    image: busybox
    command: sh -c 'while true; do wget -qO- http://web/ > /data/last 2>&1; sleep 0.3; done'
    networks: [back]
    depends_on:
      web:
        condition: service_healthy
    volumes: ["data:/data"]
volumes:
  data: {}
networks:
  front: {}
  back: {}
`,
  );
});

after(async () => {
  await compose(['down', '-v', '--rmi', 'local']).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  const left = await fx.teardown();
  assert.deepEqual(left, []);
});

async function eventually(what: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

const page = () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.text(), () => '');

test('compose: up, ps, exec, logs, up again, --scale, restart, down -v', async () => {
  const up = await compose(['up', '-d']);
  assert.equal(up.code, 0, up.stderr);
  // depends_on service_healthy: the worker was created only once web was healthy.
  const ps = await compose(['ps']);
  assert.match(ps.stdout, new RegExp(`${project}_web_1 .* Up \\(healthy\\) +127\\.0\\.0\\.1:${port}->80/tcp`));
  assert.match(ps.stdout, new RegExp(`${project}_worker_1 .* Up`));
  assert.equal(await page(), 'hello from compose\n');
  // The worker reaches web by its service name on the back network and writes to the shared volume.
  assert.ok(await eventually(async () => (await compose(['exec', '-T', 'worker', 'cat', '/data/last'])).stdout === 'hello from compose\n'));
  const env = await compose(['exec', '-T', 'web', 'sh', '-c', 'echo $MODE $GREETING']);
  assert.equal(env.stdout, 'prod hi\n');
  // mem_limit, mem_reservation and domainname, as compose files commonly carry them.
  const limits = await compose(['exec', '-T', 'web', 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.soft_limit_in_bytes', '/proc/sys/kernel/domainname']);
  assert.equal(limits.stdout, `${64 * 1048576}\n${32 * 1048576}\nexample.org\n`);
  const logs = await compose(['logs', '--no-color', 'web']);
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /Attaching to/);

  // A second up changes nothing (no "needs to be recreated"); --scale adds a worker.
  const again = await compose(['up', '-d']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /web_1 is up-to-date/);
  const scaled = await compose(['up', '-d', '--scale', 'worker=2']);
  assert.equal(scaled.code, 0, scaled.stderr);
  assert.match((await compose(['ps'])).stdout, new RegExp(`${project}_worker_2 .* Up`));

  const restart = await compose(['restart']);
  assert.equal(restart.code, 0, restart.stderr);
  assert.ok(await eventually(async () => (await page()) === 'hello from compose\n'));

  const down = await compose(['down', '-v']);
  assert.equal(down.code, 0, down.stderr);
  const left = await fx.run(['ps', '-aq']);
  assert.equal(left.stdout.trim(), '');
  assert.doesNotMatch((await fx.run(['volume', 'ls', '-q'])).stdout, new RegExp(`${project}_data`));
  assert.doesNotMatch((await fx.run(['network', 'ls', '--format', '{{.Name}}'])).stdout, new RegExp(project));
});
