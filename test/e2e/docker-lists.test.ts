// Lists as dockerd gives them, through the real docker CLI: every filter dockerd knows does what it does, one it does
// not know is refused, and a prune's filters keep what they do not match (a dropped filter would delete more than
// asked); sizes; docker top with ps options; the network counters docker stats and silo stats show.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture, randomPort } from './docker-fixture.js';

const fx = new DockerFixture();
const docker = (args: string[]) => fx.run(args);
const p = `flt${process.pid}`;
const names = (r: { stdout: string }) => r.stdout.trim().split('\n').filter(Boolean).sort();

/** GET on the Docker API: status and body. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: `${fx.d.runDir}/docker.sock`, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  await fx.start();
});

after(async () => {
  await docker(['rm', '-f', `${p}-a`, `${p}-b`, `${p}-c`]);
  await docker(['network', 'rm', `${p}-net`, `${p}-keep`, `${p}-drop`]);
  await docker(['volume', 'rm', `${p}-vol`, `${p}-vkeep`, `${p}-vdrop`]);
  assert.deepEqual(await fx.teardown(), []);
});

test('docker ps filters: health, network, volume, publish, expose, before/since, isolation, is-task; unknown ones refused', async () => {
  assert.equal((await docker(['network', 'create', `${p}-net`])).code, 0);
  const port = randomPort();
  const a = await docker(['run', '-d', '--name', `${p}-a`, '--health-cmd', 'true', '--health-interval', '1s', '-p', `127.0.0.1:${port}:80`, '--expose', '9000/udp', 'busybox', 'sleep', '300']);
  assert.equal(a.code, 0, a.stderr);
  const b = await docker(['run', '-d', '--name', `${p}-b`, '--network', `${p}-net`, '-v', `${p}-vol:/data`, 'busybox', 'sleep', '300']);
  assert.equal(b.code, 0, b.stderr);
  const c = await docker(['create', '--name', `${p}-c`, '--network', 'none', 'busybox', 'true']);
  assert.equal(c.code, 0, c.stderr);
  for (let i = 0; i < 50 && !(await docker(['ps', '--filter', 'health=healthy', '-q'])).stdout.trim(); i++) await new Promise((r) => setTimeout(r, 200));

  // The names it resolves as on its network, as dockerd lists them: its name, then its short id.
  const dns = JSON.parse((await docker(['inspect', '-f', `{{json .NetworkSettings.Networks}}`, `${p}-b`])).stdout)[`${p}-net`].DNSNames;
  assert.deepEqual(dns, [`${p}-b`, b.stdout.trim().slice(0, 12)]);
  const ps = (...f: string[]) => docker(['ps', '-a', '--format', '{{.Names}}', ...f.flatMap((x) => ['--filter', x])]).then(names);
  assert.deepEqual(await ps('health=healthy'), [`${p}-a`]);
  assert.deepEqual(await ps('health=none', `name=${p}`), [`${p}-b`, `${p}-c`]);
  assert.deepEqual(await ps(`network=${p}-net`), [`${p}-b`]);
  assert.deepEqual(await ps('network=none', `name=${p}`), [`${p}-c`]);
  assert.deepEqual(await ps(`volume=${p}-vol`), [`${p}-b`]);
  assert.deepEqual(await ps('volume=/data', `name=${p}`), [`${p}-b`]);
  assert.deepEqual(await ps('publish=80'), [`${p}-a`]);
  assert.deepEqual(await ps('publish=79-81/tcp'), [`${p}-a`]);
  assert.deepEqual(await ps('publish=80/udp'), []);
  assert.deepEqual(await ps('expose=9000/udp'), [`${p}-a`]);
  assert.deepEqual(await ps(`before=${p}-b`, `name=${p}`), [`${p}-a`]);
  assert.deepEqual(await ps(`since=${p}-a`, `name=${p}`), [`${p}-b`, `${p}-c`]);
  assert.deepEqual(await ps('isolation=process', `name=${p}`), [`${p}-a`, `${p}-b`, `${p}-c`]);
  assert.deepEqual(await ps('isolation=hyperv', `name=${p}`), []);
  assert.deepEqual(await ps('is-task=true'), []);

  // A pattern that backtracks exponentially on a name of many a's answers at once instead of holding the daemon.
  const long = 'a'.repeat(60);
  assert.equal((await docker(['create', '--name', long, 'busybox', 'true'])).code, 0);
  assert.deepEqual(await ps('name=(a+)+b'), []);
  assert.deepEqual(await ps('name=^a+$'), [long]);
  await docker(['rm', long]);
  const bad = await docker(['ps', '--filter', 'colour=red']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid filter 'colour'/);
  assert.match((await docker(['ps', '--filter', 'health=fine'])).stderr, /invalid filter 'health=fine'/);
  assert.match((await docker(['ps', '--filter', 'publish=http'])).stderr, /invalid filter 'publish=http'/);
  assert.equal((await docker(['ps', '--filter', 'before=nosuch'])).code, 1);
  // The API itself: a 400 with docker's message, for every list.
  for (const path of ['/containers/json', '/images/json', '/networks', '/volumes', '/events']) {
    const r = await get(`${path}?filters=${encodeURIComponent('{"colour":["red"]}')}`);
    assert.equal(r.status, 400, path);
    assert.match(r.body, /invalid filter 'colour'/, path);
  }
});

test('docker ps -s, inspect -s and system df count what a container wrote', async () => {
  const w = await docker(['exec', `${p}-a`, 'dd', 'if=/dev/zero', 'of=/big', 'bs=1024', 'count=300']);
  assert.equal(w.code, 0, w.stderr);
  const rw = Number((await docker(['inspect', '-s', '--format', '{{.SizeRw}} {{.SizeRootFs}}', `${p}-a`])).stdout.trim().split(' ')[0]);
  assert.ok(rw >= 300 * 1024 && rw < 400 * 1024, `SizeRw ${rw}`);
  const sizes = (await docker(['inspect', '-s', '--format', '{{.SizeRootFs}}', `${p}-a`])).stdout.trim();
  assert.ok(Number(sizes) > rw, `SizeRootFs ${sizes} includes the image`);
  assert.match((await docker(['ps', '-s', '--filter', `name=${p}-a`, '--format', '{{.Size}}'])).stdout, /^30\dkB \(virtual /);
  const df = await get('/system/df');
  const mine = (JSON.parse(df.body).Containers as { Names: string[]; SizeRw: number }[]).find((x) => x.Names[0] === `/${p}-a`);
  assert.equal(mine?.SizeRw, rw);
  // A stopped container's size is read from its scratch once and remembered until the scratch changes: a copy into it
  // shows at the next look.
  const s = await docker(['run', '--name', `${p}-s`, 'busybox', 'dd', 'if=/dev/zero', 'of=/f', 'bs=1024', 'count=100']);
  assert.equal(s.code, 0, s.stderr);
  const size = async () => Number((await docker(['inspect', '-s', '--format', '{{.SizeRw}}', `${p}-s`])).stdout.trim());
  const first = await size();
  assert.ok(first >= 100 * 1024 && first < 150 * 1024, `SizeRw ${first}`);
  assert.equal(await size(), first);
  const src = join(tmpdir(), `silo-test-sizes-${process.pid}`);
  await writeFile(src, Buffer.alloc(200 * 1024));
  try {
    assert.equal((await docker(['cp', src, `${p}-s:/g`])).code, 0);
  } finally {
    await rm(src, { force: true });
  }
  const after = await size();
  assert.ok(after >= first + 200 * 1024, `SizeRw ${after} after a copy of 200 KiB onto ${first}`);
  await docker(['rm', `${p}-s`]);
});

test("docker top with ps options runs the host's ps and keeps the container's processes only", async () => {
  const t = await docker(['top', `${p}-b`, '-o', 'pid,comm']);
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.trim().split('\n');
  assert.match(lines[0], /^PID\s+COMMAND$/);
  assert.deepEqual(lines.slice(1).map((l) => l.trim().split(/\s+/)[1]), ['sleep']);
  const aux = await docker(['top', `${p}-b`, 'aux']);
  assert.match(aux.stdout.split('\n')[0], /^USER\s+PID\s+%CPU/);
  assert.match(aux.stdout.trim().split('\n').slice(1).join('\n'), /^root\s+\d+ .*sleep 300$/);
  const noPid = await docker(['top', `${p}-b`, '-o', 'comm']);
  assert.equal(noPid.code, 1);
  assert.match(noPid.stderr, /no PID column/);
  const bad = await docker(['top', `${p}-b`, '--no-such-option']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ps --no-such-option: /);
});

test('stats count the traffic of the container\'s endpoint: what it sent and received, in both doors', async () => {
  const port = randomPort();
  const r = await docker(['run', '-d', '--name', `${p}-web`, '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'mkdir /w && head -c 204800 /dev/zero > /w/f && httpd -f -p 80 -h /w']);
  assert.equal(r.code, 0, r.stderr);
  let body = 0;
  for (let i = 0; i < 50 && !body; i++) {
    body = await fetch(`http://127.0.0.1:${port}/f`).then((x) => x.arrayBuffer()).then((b) => b.byteLength, () => 0);
    if (!body) await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(body, 204800);
  const st = JSON.parse((await get(`/containers/${p}-web/stats?stream=0`)).body) as { networks: Record<string, { rx_bytes: number; tx_bytes: number }> };
  assert.ok(st.networks.eth0.tx_bytes >= 204800, `sent ${st.networks.eth0.tx_bytes}`);
  assert.ok(st.networks.eth0.rx_bytes > 0 && st.networks.eth0.rx_bytes < 204800, `received ${st.networks.eth0.rx_bytes}`);
  assert.match((await docker(['stats', '--no-stream', '--format', '{{.NetIO}}', `${p}-web`])).stdout.trim(), /^[\d.]+k?B \/ 2\d\dkB$/);
  const native = await fx.d.silo(['stats', '--no-stream', '--format', '{{.NetIO}}', `${p}-web`]);
  assert.match(native.stdout.trim(), /^[\d.]+k?B \/ 2\d\dkB$/, native.stderr);
  // A container in its network namespace crosses the same endpoint, and shows its traffic.
  assert.equal((await docker(['run', '-d', '--name', `${p}-side`, '--network', `container:${p}-web`, 'busybox', 'sleep', '300'])).code, 0);
  assert.match((await docker(['stats', '--no-stream', '--format', '{{.NetIO}}', `${p}-side`])).stdout.trim(), /^[\d.]+k?B \/ 2\d\dkB$/);
  await docker(['rm', '-f', `${p}-side`, `${p}-web`]);
});

test('prune filters keep what they do not match: images, volumes, networks', async () => {
  // Images: two unused tags of busybox's image under new names, one labelled.
  const build = (tag: string, label: string) =>
    fx.run([`printf 'FROM busybox\\nLABEL ${label}\\n' | docker build -q -t ${tag} -`], { shell: true });
  assert.equal((await build(`${p}-img:keep`, 'tier=keep')).code, 0);
  assert.equal((await build(`${p}-img:drop`, 'tier=drop')).code, 0);
  const pr = await docker(['image', 'prune', '-a', '-f', '--filter', 'label=tier=drop']);
  assert.equal(pr.code, 0, pr.stderr);
  const left = names(await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', `${p}-img`]));
  assert.deepEqual(left, [`${p}-img:keep`]);
  assert.equal((await docker(['image', 'prune', '-a', '-f', '--filter', 'until=2000-01-01T00:00:00Z'])).code, 0);
  assert.deepEqual(names(await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', `${p}-img`])), [`${p}-img:keep`]);
  assert.match((await docker(['image', 'prune', '-f', '--filter', 'colour=red'])).stderr, /invalid filter 'colour'/);
  await docker(['rmi', `${p}-img:keep`]);

  // Volumes: `--all` with a label removes only the labelled one.
  await docker(['volume', 'create', '--label', 'tier=keep', `${p}-vkeep`]);
  await docker(['volume', 'create', '--label', 'tier=drop', `${p}-vdrop`]);
  assert.equal((await docker(['volume', 'prune', '-a', '-f', '--filter', 'label=tier=drop'])).code, 0);
  const vols = names(await docker(['volume', 'ls', '-q', '--filter', `name=${p}-v`]));
  assert.deepEqual(vols, [`${p}-vkeep`, `${p}-vol`]); // the other is in use
  assert.match((await docker(['volume', 'prune', '-f', '--filter', 'until=1h'])).stderr, /invalid filter 'until'/);

  // Networks: label! keeps the labelled one; until in the past keeps both.
  await docker(['network', 'create', '--label', 'tier=keep', `${p}-keep`]);
  await docker(['network', 'create', `${p}-drop`]);
  assert.equal((await docker(['network', 'prune', '-f', '--filter', 'until=2000-01-01T00:00:00Z'])).code, 0);
  assert.equal((await docker(['network', 'prune', '-f', '--filter', 'label!=tier'])).code, 0);
  const nets = names(await docker(['network', 'ls', '--format', '{{.Name}}', '--filter', `name=${p}-`]));
  assert.ok(nets.includes(`${p}-keep`) && !nets.includes(`${p}-drop`), nets.join(' '));
  assert.deepEqual(names(await docker(['network', 'ls', '--format', '{{.Name}}', '--filter', 'dangling=true', '--filter', `name=${p}-`])), [`${p}-keep`]);
});
