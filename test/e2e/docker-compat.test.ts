// Docker compatibility a user counts on (issue 15): what compose and everyday docker CLI use does as dockerd does.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const made = await docker(['network', 'create', '--label', 'com.docker.compose.network=default', n]);
  assert.equal(made.code, 0, made.stderr);
  const show = () => docker(['network', 'inspect', n, '--format', '{{json .Options}} {{json .Labels}}']);
  assert.equal((await show()).stdout.trim(), '{} {"com.docker.compose.network":"default"}');
  await fx.d.kill();
  await fx.start();
  assert.equal((await show()).stdout.trim(), '{} {"com.docker.compose.network":"default"}');
  const bad = await docker(['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', `${n}x`]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /option com\.docker\.network\.bridge\.enable_icc is not supported/);
  const rmd = await docker(['network', 'rm', n]);
  assert.equal(rmd.code, 0, rmd.stderr);
});

test('docker run of a missing or unrunnable command exits 127/126 at once, and --rm leaves nothing', async () => {
  const nf = await docker(['run', '--rm', 'busybox', '/nonexistent'], { timeoutMs: 20_000 });
  assert.equal(nf.code, 127, nf.stderr);
  assert.match(nf.stderr, /no such file or directory/);
  const nx = await docker(['run', '--rm', 'busybox', '/etc/passwd'], { timeoutMs: 20_000 });
  assert.equal(nx.code, 126, nx.stderr);
  const kept = await docker(['run', '--name', 'h1', 'busybox', '/nonexistent'], { timeoutMs: 20_000 });
  assert.equal(kept.code, 127);
  assert.equal((await docker(['inspect', 'h1', '--format', '{{.State.ExitCode}}'])).stdout.trim(), '127');
  await docker(['rm', '-f', 'h1']);
  const ps = await docker(['ps', '-aq']);
  assert.equal(ps.stdout.trim(), '');
  // `--entrypoint ""` clears the image's entrypoint (the CLI sends [""]).
  const e = await docker(['run', '--rm', '--entrypoint', '', 'busybox', 'echo', 'hi'], { timeoutMs: 20_000 });
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout, 'hi\n');
});

test('--platform: the image of that platform runs; another is a 404 as dockerd answers it, nothing made', async () => {
  const same = await docker(['run', '--rm', '--platform', 'linux/amd64', 'busybox', 'true'], { timeoutMs: 20_000 });
  assert.equal(same.code, 0, same.stderr);
  // --pull never: the CLI reports the create's answer instead of pulling the other platform's image.
  const other = await docker(['create', '--pull', 'never', '--platform', 'linux/arm64', 'busybox', 'true']);
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /image with reference busybox:latest was found but does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64/);
  const bad = await docker(['create', '--platform', 'linux/a b', 'busybox', 'true']);
  assert.notEqual(bad.code, 0);
  assert.equal((await docker(['ps', '-aq'])).stdout.trim(), '');
});

test('a failed exec says why and exits 127/126 as with dockerd', async () => {
  await docker(['rm', '-f', 'h1']);
  assert.equal((await docker(['run', '-d', '--name', 'h1', 'busybox', 'sleep', '1000'])).code, 0);
  const nf = await docker(['exec', 'h1', '/nope']);
  assert.equal(nf.code, 127);
  assert.match(nf.stdout + nf.stderr, /no such file or directory/);
  assert.doesNotMatch(nf.stderr, /unable to upgrade/);
  const wd = await docker(['exec', '-w', '/nodir', 'h1', 'true']);
  assert.equal(wd.code, 126);
  assert.equal((await docker(['exec', 'h1', '/etc/passwd'])).code, 126);
});

/** One exec through the Docker API as Python's requests reads it: the whole first recv is taken for the headers,
 *  so any output that came with them is lost. Returns the stdout that arrived after. */
async function execLikeRequests(container: string, cmd: string[]): Promise<string> {
  const sock = `${fx.d.runDir}/docker.sock`;
  const post = async (path: string, body: unknown) => {
    const r = await fetchUnix(sock, path, body);
    return JSON.parse(r) as { Id: string };
  };
  const { Id } = await post(`/containers/${container}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const s = createConnection(sock);
  await once(s, 'connect');
  const body = '{"Detach":false,"Tty":false}';
  s.write(`POST /exec/${Id}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const [firstRecv] = (await once(s, 'data')) as [Buffer];
  assert.match(firstRecv.toString('latin1'), /^HTTP\/1.1 101/);
  const chunks: Buffer[] = [];
  s.on('data', (b: Buffer) => chunks.push(b));
  await once(s, 'end');
  s.destroy();
  let buf = Buffer.concat(chunks);
  let out = '';
  while (buf.length >= 8) {
    const n = buf.readUInt32BE(4);
    if (buf[0] === 1) out += buf.subarray(8, 8 + n).toString();
    buf = buf.subarray(8 + n);
  }
  return out;
}

function fetchUnix(sock: string, path: string, body: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request({ socketPath: sock, path, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve(t));
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('200 execs through a client that reads headers and body in one recv lose no output', async () => {
  await docker(['rm', '-f', 'h1']);
  assert.equal((await docker(['run', '-d', '--name', 'h1', 'busybox', 'sleep', '1000'])).code, 0);
  let lost = 0;
  for (let i = 0; i < 200; i++) if ((await execLikeRequests('h1', ['echo', `line${i}`])) !== `line${i}\n`) lost++;
  assert.equal(lost, 0);
});

async function until(what: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

test('HEALTHCHECK from a Dockerfile and --health-cmd: starting, healthy, unhealthy, shown by inspect and ps', async () => {
  await docker(['rm', '-f', 'h1']);
  const ctx = await mkdtemp(join(tmpdir(), 'silo-health-'));
  try {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nHEALTHCHECK --interval=300ms --timeout=2s --retries=2 CMD test -f /tmp/ok\nCMD ["sleep", "1000"]\n');
    const b = await docker(['build', '-t', 'healthy-img', '.'], { cwd: ctx });
    assert.equal(b.code, 0, b.stderr);
    const hc = await docker(['image', 'inspect', 'healthy-img', '--format', '{{json .Config.Healthcheck}}']);
    assert.equal(hc.stdout.trim(), '{"Test":["CMD-SHELL","test -f /tmp/ok"],"Interval":300000000,"Timeout":2000000000,"Retries":2}');
    assert.equal((await docker(['run', '-d', '--name', 'h1', 'healthy-img'])).code, 0);
    const status = async () => (await docker(['inspect', 'h1', '--format', '{{.State.Health.Status}}'])).stdout.trim();
    assert.equal(await status(), 'starting');
    assert.ok(await until(async () => (await status()) === 'unhealthy'), 'never unhealthy');
    assert.equal((await docker(['exec', 'h1', 'touch', '/tmp/ok'])).code, 0);
    assert.ok(await until(async () => (await status()) === 'healthy'), 'never healthy');
    assert.match((await docker(['ps', '--filter', 'name=h1', '--format', '{{.Status}}'])).stdout, /^Up .* \(healthy\)$/m);
    const log = JSON.parse((await docker(['inspect', 'h1', '--format', '{{json .State.Health}}'])).stdout);
    assert.equal(log.FailingStreak, 0);
    assert.equal(log.Log.at(-1).ExitCode, 0);
    await docker(['rm', '-f', 'h1']);
    // --health-cmd on run; --no-healthcheck turns the image's off.
    assert.equal((await docker(['run', '-d', '--name', 'h1', '--health-cmd', 'true', '--health-interval', '200ms', 'busybox', 'sleep', '1000'])).code, 0);
    assert.ok(await until(async () => (await status()) === 'healthy'));
    await docker(['rm', '-f', 'h1']);
    assert.equal((await docker(['run', '-d', '--name', 'h1', '--no-healthcheck', 'healthy-img'])).code, 0);
    assert.equal((await docker(['inspect', 'h1', '--format', '{{json .State.Health}}'])).stdout.trim(), 'null');
    await docker(['rm', '-f', 'h1']);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test('ONBUILD triggers run in a build FROM the image, and are not inherited further', async () => {
  const ctx = await mkdtemp(join(tmpdir(), 'silo-onbuild-'));
  try {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nONBUILD RUN echo triggered > /onbuilt\n');
    assert.equal((await docker(['build', '-t', 'onbuild-base', '.'], { cwd: ctx })).code, 0);
    await writeFile(join(ctx, 'Dockerfile'), 'FROM onbuild-base\nCMD ["cat", "/onbuilt"]\n');
    const b = await docker(['build', '-t', 'onbuild-child', '.'], { cwd: ctx });
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /Executing 1 build trigger/);
    const r = await docker(['run', '--rm', 'onbuild-child']);
    assert.equal(r.stdout, 'triggered\n');
    assert.equal((await docker(['image', 'inspect', 'onbuild-child', '--format', '{{json .Config.OnBuild}}'])).stdout.trim(), 'null');
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test('the predefined bridge, host and none networks; IPAM ip-range and auxiliary addresses', async () => {
  const ls = await docker(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
  for (const line of ['bridge bridge', 'host host', 'none null']) assert.ok(ls.stdout.split('\n').includes(line), ls.stdout);
  assert.equal((await docker(['network', 'inspect', 'none', '--format', '{{.Driver}}'])).stdout.trim(), 'null');
  const rmb = await docker(['network', 'rm', 'bridge']);
  assert.notEqual(rmb.code, 0);
  assert.match(rmb.stderr, /bridge is a pre-defined network and cannot be removed/);
  await docker(['rm', '-f', 'h1']);
  assert.equal((await docker(['run', '-d', '--name', 'h1', '--network', 'host', 'busybox', 'sleep', '100'])).code, 0);
  assert.equal((await docker(['inspect', 'h1', '--format', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}'])).stdout.trim(), 'host');
  await docker(['rm', '-f', 'h1']);
  const n = `${net}r`;
  const c = await docker(['network', 'create', '--subnet', '10.231.7.0/24', '--ip-range', '10.231.7.128/28', '--aux-address', 'router=10.231.7.129', n]);
  assert.equal(c.code, 0, c.stderr);
  const cfg = JSON.parse((await docker(['network', 'inspect', n, '--format', '{{json .IPAM.Config}}'])).stdout);
  assert.deepEqual(cfg, [{ Subnet: '10.231.7.0/24', IPRange: '10.231.7.128/28', Gateway: '10.231.7.1', AuxiliaryAddresses: { router: '10.231.7.129' } }]);
  const ips: string[] = [];
  for (let i = 0; i < 3; i++) ips.push((await docker(['run', '--rm', '--network', n, 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | awk "{print \\$4}"'])).stdout.trim());
  for (const ip of ips) assert.match(ip, /^10\.231\.7\.(12[89]|1[34]\d)\/24$/);
  assert.ok(!ips.includes('10.231.7.129/24'), `an auxiliary address was handed out: ${ips}`);
  const aux = await docker(['run', '--rm', '--network', n, '--ip', '10.231.7.129', 'busybox', 'true']);
  assert.equal(aux.code, 125);
  assert.match(aux.stderr, /reserved/);
  assert.equal((await docker(['network', 'rm', n])).code, 0);
});

/** An upgraded POST on the Docker socket; resolves with the socket once the 101 is read. */
async function upgrade(path: string): Promise<{ s: ReturnType<typeof createConnection>; rest: Buffer }> {
  const s = createConnection(`${fx.d.runDir}/docker.sock`);
  await once(s, 'connect');
  s.write(`POST ${path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
  let buf = Buffer.alloc(0);
  while (!buf.includes('\r\n\r\n')) buf = Buffer.concat([buf, ((await once(s, 'data')) as [Buffer])[0]]);
  const end = buf.indexOf('\r\n\r\n') + 4;
  assert.match(buf.subarray(0, end).toString(), /^HTTP\/1.1 101/);
  return { s, rest: buf.subarray(end) };
}

function demux(buf: Buffer): string {
  let out = '';
  while (buf.length >= 8) {
    const n = buf.readUInt32BE(4);
    out += buf.subarray(8, 8 + n).toString();
    buf = buf.subarray(8 + n);
  }
  return out;
}

test('attach: logs=1&stream=0 answers the past output and ends; detach keys end an attachment, the container runs on', async () => {
  await docker(['rm', '-f', 'h1']);
  assert.equal((await docker(['run', '-di', '--name', 'h1', 'busybox', 'sh', '-c', 'echo before; cat'])).code, 0);
  // The run answers once the container started, not once its shell has printed (a busy machine lags there).
  for (let i = 0; i < 100 && (await docker(['logs', 'h1'])).stdout !== 'before\n'; i++) await new Promise((r) => setTimeout(r, 100));
  const { s: past, rest } = await upgrade('/containers/h1/attach?logs=1&stream=0&stdout=1&stderr=1');
  const chunks = [rest];
  past.on('data', (b: Buffer) => chunks.push(b));
  await once(past, 'end');
  assert.equal(demux(Buffer.concat(chunks)), 'before\n');

  const { s, rest: r0 } = await upgrade('/containers/h1/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,x');
  const live = [r0];
  s.on('data', (b: Buffer) => live.push(b));
  s.write('echo\n');
  // A broken-off partial sequence passes through; the whole one detaches and is not passed on.
  s.write(Buffer.from([0x18, 0x61, 0x0a]));
  await new Promise((r) => setTimeout(r, 500));
  s.write(Buffer.from([0x18, 0x78]));
  await once(s, 'end');
  assert.equal(demux(Buffer.concat(live)), 'echo\n\x18a\n');
  assert.equal((await docker(['inspect', 'h1', '--format', '{{.State.Running}}'])).stdout.trim(), 'true');
  await docker(['rm', '-f', 'h1']);
});

test('a client that closes an archive download early does not take the daemon down', async () => {
  await docker(['rm', '-f', 'h1']);
  assert.equal((await docker(['run', '-d', '--name', 'h1', 'busybox', 'sleep', '1000'])).code, 0);
  for (let i = 0; i < 5; i++) {
    const s = createConnection(`${fx.d.runDir}/docker.sock`);
    await once(s, 'connect');
    s.write('GET /containers/h1/archive?path=/bin HTTP/1.1\r\nHost: docker\r\n\r\n');
    await once(s, 'data');
    s.destroy(); // like `curl … | head -c 10`
  }
  await new Promise((r) => setTimeout(r, 300));
  const v = await docker(['version', '--format', '{{.Server.APIVersion}}']);
  assert.equal(v.code, 0, v.stderr);
  const cp = await docker(['exec', 'h1', 'ls', '/bin/sh']);
  assert.equal(cp.stdout, '/bin/sh\n');
  await docker(['rm', '-f', 'h1']);
});
