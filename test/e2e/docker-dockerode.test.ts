// dockerode (the Node SDK) against Silo's Docker API: create, attach, start, exec, logs, inspect, build, networks.

import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import * as tar from 'tar-stream';
import { DockerFixture } from './docker-fixture.js';

const fx = new DockerFixture();
let docker: Docker;

before(async () => {
  await fx.start();
  docker = new Docker({ socketPath: `${fx.d.runDir}/docker.sock` });
});

after(async () => {
  const left = await fx.teardown();
  assert.deepEqual(left, []);
});

/** Demultiplex a docker stream into stdout and stderr text, resolving at its end. */
function collect(stream: NodeJS.ReadableStream): Promise<{ out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (b) => (o += b));
  err.on('data', (b) => (e += b));
  docker.modem.demuxStream(stream, out, err);
  return new Promise((res) => stream.on('end', () => res({ out: o, err: e })));
}

test('create, attach, start, wait, logs, inspect, remove', async () => {
  const c = await docker.createContainer({ Image: 'busybox', name: 'dk1', Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 4'], Labels: { suite: 'dockerode' } });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  const got = collect(stream);
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  assert.deepEqual(await got, { out: 'out\n', err: 'err\n' });
  assert.equal((await waited).StatusCode, 4);
  const logs = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  assert.ok(Buffer.isBuffer(logs));
  assert.ok(logs.includes('out\n') && logs.includes('err\n'));
  const info = await c.inspect();
  assert.equal(info.Name, '/dk1');
  assert.equal(info.State.Status, 'exited');
  assert.equal(info.State.ExitCode, 4);
  assert.equal(info.Config.Labels.suite, 'dockerode');
  const list = await docker.listContainers({ all: true, filters: { label: ['suite=dockerode'] } });
  assert.equal(list.length, 1);
  assert.match(list[0].Status, /^Exited \(4\) /);
  await c.remove();
  await assert.rejects(c.inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
});

test('exec with hijack and its exit code', async () => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'] });
  await c.start();
  const ex = await c.exec({ Cmd: ['sh', '-c', 'echo hi; exit 2'], AttachStdout: true, AttachStderr: true });
  const s = await ex.start({ hijack: true, stdin: false });
  assert.equal((await collect(s)).out, 'hi\n');
  const ins = await ex.inspect();
  assert.equal(ins.ExitCode, 2);
  assert.equal(ins.Running, false);
  await c.remove({ force: true });
});

test('build from a tar context, then run the image', async () => {
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, 'FROM busybox\nARG WHO=nobody\nENV GREETING=hello\nRUN echo "$GREETING $WHO" > /msg\nCMD ["cat", "/msg"]\n');
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as Readable, { t: 'dk-build:1', buildargs: { WHO: 'dockerode' } });
  const msgs = await new Promise<any[]>((res, rej) => docker.modem.followProgress(stream, (e: Error | null, out: any[]) => (e ? rej(e) : res(out))));
  assert.ok(msgs.some((m) => m.stream === 'Successfully tagged dk-build:1\n'), JSON.stringify(msgs));
  const c = await docker.createContainer({ Image: 'dk-build:1' });
  const got = collect(await c.attach({ stream: true, stdout: true, stderr: true, hijack: true }));
  await c.start();
  assert.equal((await got).out, 'hello dockerode\n');
  await c.wait();
  await c.remove();
  await docker.getImage('dk-build:1').remove();
});

test('networks: create, list, inspect, connect, disconnect, remove', async () => {
  const n = await docker.createNetwork({ Name: 'dknet' });
  const nets = await docker.listNetworks();
  assert.ok(nets.some((x) => x.Name === 'dknet' && x.Driver === 'bridge'));
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'] });
  await c.start();
  await n.connect({ Container: c.id });
  const info = await c.inspect();
  assert.ok(info.NetworkSettings.Networks.dknet?.IPAddress);
  assert.ok(Object.keys(((await n.inspect()) as { Containers: object }).Containers).includes(c.id));
  await n.disconnect({ Container: c.id });
  await c.remove({ force: true });
  await n.remove();
  await assert.rejects(docker.getNetwork('dknet').inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
});
