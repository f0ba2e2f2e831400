// The CRI's streams against a real daemon: GetContainerEvents as the kubelet's evented PLEG reads it, stdin and
// stdin_once across attaches, WebSocket streaming beside SPDY, and the writable layer in ContainerStats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { sleep } from './harness.js';
import { remoteCommand, spdyUpgrade, wsPortForwardOnce, wsRemoteCommand } from './cri-client.js';
import { criFixture } from './cri-fixture.js';

const { d, logDir, c } = criFixture('cri-streams');

const podConfig = (name: string) => ({ metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 }, hostname: name, log_directory: logDir });

async function waitState(id: string, state: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await c.runtime.ContainerStatus({ container_id: id })).status.state === state) return;
    await sleep(100);
  }
  assert.fail(`container ${id} did not reach ${state}`);
}

test('GetContainerEvents: created, started, stopped and deleted, each with the pod and its containers as they are', async () => {
  const events: any[] = [];
  const stream = c.events();
  stream.on('data', (e) => events.push(e));
  stream.on('error', () => {});
  await sleep(200); // the server subscribes when the call arrives
  const cfg = podConfig('events');
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: cfg });
  const { container_id: ctr } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: cfg,
    config: { metadata: { name: 'main', attempt: 0 }, image: { image: 'busybox' }, command: ['sleep', '60'], log_path: 'main.log' },
  });
  await c.runtime.StartContainer({ container_id: ctr });
  await c.runtime.StopContainer({ container_id: ctr, timeout: 0 });
  await c.runtime.RemoveContainer({ container_id: ctr });
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  await sleep(300);
  stream.cancel();

  const mine = events.filter((e) => e.container_id === ctr);
  assert.deepEqual(mine.map((e) => e.container_event_type), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
  for (const e of mine) {
    assert.equal(e.pod_sandbox_status.id, pod);
    assert.equal(e.pod_sandbox_status.metadata.uid, 'uid-events');
    assert.ok(e.created_at > 0);
  }
  // Each event carries the container's state after the change; once deleted it is no longer among the pod's.
  const stateAt = (i: number) => mine[i].containers_statuses.find((s: { id: string }) => s.id === ctr)?.state;
  assert.deepEqual([0, 1, 2].map(stateAt), ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED']);
  assert.equal(stateAt(3), undefined);
  assert.equal(mine[1].pod_sandbox_status.state, 'SANDBOX_READY');
  // The sandbox's own lifecycle, under its id.
  const sb = events.filter((e) => e.container_id === pod).map((e) => e.container_event_type);
  assert.deepEqual(sb, ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
  assert.equal(events.filter((e) => e.container_id === pod).at(-1).pod_sandbox_status.state, 'SANDBOX_NOTREADY');
});

/** An output-only attach that goes away after `ms` without the container ending. */
async function attachAndLeave(url: string, ms: number): Promise<void> {
  const { conn } = await spdyUpgrade(url, ['v4.channel.k8s.io']);
  await conn.openStream({ streamtype: 'error' });
  const out = await conn.openStream({ streamtype: 'stdout' });
  out.resume();
  await sleep(ms);
  conn.close();
}

test('stdin_once: the first attach that carried stdin closes it; without stdin_once it stays open across attaches', async () => {
  const cfg = podConfig('stdin');
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: cfg });
  const reader = ['sh', '-c', 'while read l; do echo got:$l; done; echo eof'];
  const make = async (name: string, once: boolean) =>
    (await c.runtime.CreateContainer({
      pod_sandbox_id: pod,
      sandbox_config: cfg,
      config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, command: reader, stdin: true, stdin_once: once, log_path: `${name}.log` },
    })).container_id as string;
  const once = await make('once', true);
  const open = await make('open', false);
  for (const id of [once, open]) await c.runtime.StartContainer({ container_id: id });
  const attach = async (id: string, stdin: boolean) => (await c.runtime.Attach({ container_id: id, stdin, stdout: true, stderr: false })).url as string;

  // A client that only read the output leaves the stdin alone.
  await attachAndLeave(await attach(once, false), 300);
  await sleep(500);
  assert.equal((await c.runtime.ContainerStatus({ container_id: once })).status.state, 'CONTAINER_RUNNING');
  // The first attach with stdin: its end closes the container's stdin, and the reader ends.
  const r1 = await remoteCommand(await attach(once, true), { stdin: 'a\n', stderr: false, until: (o) => o.includes('eof') });
  assert.equal(r1.stdout, 'got:a\neof\n');
  await waitState(once, 'CONTAINER_EXITED');

  // Without stdin_once, one attach's end of stdin is not the container's: a second attach still writes to it.
  const r2 = await remoteCommand(await attach(open, true), { stdin: 'a\n', stderr: false, until: (o) => o.includes('got:a') });
  assert.equal(r2.stdout, 'got:a\n');
  await sleep(500);
  assert.equal((await c.runtime.ContainerStatus({ container_id: open })).status.state, 'CONTAINER_RUNNING');
  const r3 = await remoteCommand(await attach(open, true), { stdin: 'b\n', stderr: false, until: (o) => o.includes('got:b') });
  assert.equal(r3.stdout, 'got:b\n');
  assert.equal((await c.runtime.ContainerStatus({ container_id: open })).status.state, 'CONTAINER_RUNNING');

  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
});

test("ContainerStats' writable layer: the scratch's bytes and inodes in use, live and once stopped; ImageFsInfo adds them up", async () => {
  const cfg = podConfig('disk');
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: cfg });
  const { container_id: ctr } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: cfg,
    config: { metadata: { name: 'writer', attempt: 0 }, image: { image: 'busybox' }, command: ['sleep', '600'], log_path: 'writer.log' },
  });
  await c.runtime.StartContainer({ container_id: ctr });
  const layer = async () => (await c.runtime.ContainerStats({ container_id: ctr })).stats.writable_layer;
  const before = await layer();
  await c.runtime.ExecSync({ container_id: ctr, cmd: ['sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null && mkdir /many && for i in $(seq 200); do : > /many/$i; done && sync'], timeout: 60 });
  const live = await layer();
  assert.ok(live.used_bytes.value - before.used_bytes.value >= 8 * 1024 * 1024, `${before.used_bytes.value} -> ${live.used_bytes.value}`);
  assert.ok(live.inodes_used.value - before.inodes_used.value >= 201, `${before.inodes_used.value} -> ${live.inodes_used.value}`);
  assert.ok(live.fs_id.mountpoint.length > 0);
  // What the container's own df counts is the same filesystem.
  const df = (await c.runtime.ExecSync({ container_id: ctr, cmd: ['df', '-k', '/'], timeout: 10 })).stdout.toString().trim().split('\n').pop()!.split(/\s+/);
  assert.ok(Math.abs(Number(df[2]) * 1024 - live.used_bytes.value) < 1024 * 1024, `df ${df[2]} KiB vs ${live.used_bytes.value}`);

  const fsInfo = await c.image.ImageFsInfo({});
  assert.equal(fsInfo.container_filesystems.length, 1);
  assert.equal(fsInfo.container_filesystems[0].fs_id.mountpoint, live.fs_id.mountpoint);
  assert.equal(fsInfo.image_filesystems[0].fs_id.mountpoint, live.fs_id.mountpoint);
  assert.ok(fsInfo.container_filesystems[0].used_bytes.value >= live.used_bytes.value);

  // Stopped (its scratch unmounted), the superblock written back at the unmount says the same.
  await c.runtime.StopContainer({ container_id: ctr, timeout: 0 });
  const stopped = await layer();
  assert.ok(Math.abs(stopped.used_bytes.value - live.used_bytes.value) < 1024 * 1024, `${live.used_bytes.value} vs ${stopped.used_bytes.value}`);
  assert.equal(stopped.inodes_used.value, live.inodes_used.value);

  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
});

test('WebSocket streaming beside SPDY: exec with v5 (stdin closed by its signal), v4 and base64; port-forward by channels', async () => {
  const cfg = { ...podConfig('ws'), port_mappings: [] };
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: cfg });
  const { container_id: ctr } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: cfg,
    config: { metadata: { name: 'web', attempt: 0 }, image: { image: 'busybox' }, command: ['sh', '-c', 'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 127.0.0.1:80 -h /www'], log_path: 'web.log' },
  });
  await c.runtime.StartContainer({ container_id: ctr });
  const exec = async (cmd: string[], stdin: boolean) => (await c.runtime.Exec({ container_id: ctr, cmd, stdin, stdout: true, stderr: true })).url as string;

  // v5: the client's end of stdin arrives as the close signal, so `cat` ends; the exit status as v4's.
  const v5 = await wsRemoteCommand(await exec(['sh', '-c', 'cat; echo err >&2; exit 2'], true), ['v5.channel.k8s.io', 'v4.channel.k8s.io'], { stdin: 'over websocket\n' });
  assert.equal(v5.protocol, 'v5.channel.k8s.io');
  assert.equal(v5.stdout, 'over websocket\n');
  assert.equal(v5.stderr, 'err\n');
  assert.equal(JSON.parse(v5.status).details.causes[0].message, '2');
  assert.equal(v5.code, 1000);
  const v4 = await wsRemoteCommand(await exec(['echo', 'four'], false), ['v4.channel.k8s.io']);
  assert.deepEqual([v4.protocol, v4.stdout, JSON.parse(v4.status).status], ['v4.channel.k8s.io', 'four\n', 'Success']);
  const b64 = await wsRemoteCommand(await exec(['sh', '-c', 'echo b64; exit 1'], false), ['v4.base64.channel.k8s.io']);
  assert.deepEqual([b64.protocol, b64.stdout, JSON.parse(b64.status).status], ['v4.base64.channel.k8s.io', 'b64\n', 'Failure']);
  // What we do not speak is refused at the handshake.
  await assert.rejects(wsRemoteCommand(await exec(['true'], false), ['v9.channel.k8s.io']), /HTTP 400/);
  // And SPDY still answers the same URLs.
  assert.equal((await remoteCommand(await exec(['echo', 'spdy'], false))).stdout, 'spdy\n');

  // Port-forward to the pod's loopback: channels 0 (data) and 1 (error), each opened with the port.
  const pf = await c.runtime.PortForward({ pod_sandbox_id: pod, port: [80] });
  const r = await wsPortForwardOnce(pf.url, 80, 'GET / HTTP/1.0\r\n\r\n');
  assert.deepEqual(r.ports, [80, 80]);
  assert.match(r.out, /^HTTP\/1\.[01] 200/);
  assert.match(r.out, /served\n$/);
  assert.equal(r.err, '');
  const closed = await wsPortForwardOnce((await c.runtime.PortForward({ pod_sandbox_id: pod, port: [9] })).url, 9, 'x');
  assert.match(closed.err, /failed to connect to port 9 of the pod/);
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
});

test("a pod's infra has an in-memory scratch: a tmpfs under its root, no ext4 image; a container's is the capped image", async () => {
  const cfg = podConfig('infra');
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: cfg });
  const { container_id: ctr } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: cfg,
    config: { metadata: { name: 'main', attempt: 0 }, image: { image: 'busybox' }, command: ['sleep', '600'], log_path: 'main.log' },
  });
  await c.runtime.StartContainer({ container_id: ctr });
  // mountinfo: mount point (5th field), then after " - " the filesystem type.
  const scratchType = (id: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => [l.split(' ')[4], l.split(' - ')[1]?.split(' ')[0]]).find(([mp]) => mp?.startsWith(d.runDir) && mp.endsWith(`/scratch/${id}`))?.[1];
  assert.equal(scratchType(pod), 'tmpfs');
  assert.equal(scratchType(ctr), 'ext4');
  assert.equal(existsSync(`${d.stateDir}/storage/scratch/${pod}.img`), false);
  assert.equal(existsSync(`${d.stateDir}/storage/scratch/${ctr}.img`), true);
  // Stopped, the infra's root goes (right after the stop's answer), with whatever its tmpfs held.
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  for (let i = 0; i < 50 && scratchType(pod); i++) await sleep(100);
  assert.equal(scratchType(pod), undefined);
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  assert.equal(existsSync(`${d.stateDir}/storage/scratch/${pod}.json`), false);
});
