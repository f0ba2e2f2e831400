// The Kubernetes CRI against a real daemon, driven as a kubelet drives it: a pod sandbox with two containers that
// share localhost and PID, ExecSync, exec/attach/port-forward over SPDY, CRI logs, statistics, stop and remove.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { get } from 'node:http';
import { sleep } from './harness.js';
import { codeOf, portForwardOnce, remoteCommand } from './cri-client.js';
import { criFixture } from './cri-fixture.js';

// The pod cgroups are the kubelet's to make and remove; here the test plays the kubelet.
const { d, logDir, c } = criFixture('cri-logs', async (d) => {
  for (const ctl of readdirSync('/sys/fs/cgroup')) {
    for (const dir of [`${d.tag}/kubepods/pod-web`, `${d.tag}/kubepods`]) await rmdir(`/sys/fs/cgroup/${ctl}/${dir}`).catch(() => {});
  }
});

const hostPort = 30000 + Math.floor(Math.random() * 10000);
const podConfig = {
  metadata: { name: 'web', uid: 'uid-1', namespace: 'default', attempt: 0 },
  hostname: 'webpod',
  log_directory: logDir,
  dns_config: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
  port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: hostPort, host_ip: '127.0.0.1' }],
  labels: { app: 'web' },
  annotations: { note: 'a' },
  linux: {
    cgroup_parent: `/${d.tag}/kubepods/pod-web`,
    // The pod's own security context goes to its infra process.
    security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' }, run_as_user: { value: 65534 }, readonly_rootfs: true, seccomp: { profile_type: 'RuntimeDefault' } },
  },
};
const shared = { linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } } };

const httpGet = (port: number) =>
  new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      let b = '';
      res.on('data', (x) => (b += x));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });

test('version, status and runtime config', async () => {
  const v = await c.runtime.Version({ version: 'v1' });
  assert.equal(v.runtime_name, 'silo');
  assert.equal(v.runtime_api_version, 'v1');
  const s = await c.runtime.Status({});
  assert.deepEqual(s.status.conditions.map((x: { type: string; status: boolean }) => [x.type, x.status]), [['RuntimeReady', true], ['NetworkReady', true]]);
  assert.deepEqual(s.runtime_handlers.map((h: { name: string }) => h.name).slice(0, 3), ['', 'runc', 'process']);
  assert.equal((await c.runtime.RuntimeConfig({})).linux.cgroup_driver, 'CGROUPFS');
  const imgs = await c.image.ListImages({});
  assert.ok(imgs.images.some((i: { repo_tags: string[] }) => i.repo_tags.includes('docker.io/library/busybox:latest')));
});

test('a pod: two containers sharing localhost and PID, exec, attach, logs, stats, port-forward, stop, remove', async () => {
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: podConfig });
  const st = await c.runtime.PodSandboxStatus({ pod_sandbox_id: pod });
  assert.equal(st.status.state, 'SANDBOX_READY');
  assert.match(st.status.network.ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.deepEqual(st.status.labels, { app: 'web' });

  const web = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: podConfig,
    config: {
      metadata: { name: 'server', attempt: 0 },
      image: { image: 'busybox' },
      command: ['sh', '-c', 'mkdir -p /www && echo served > /www/index.html && echo started && echo oops >&2 && httpd -p 127.0.0.1:8081 -h /www && exec httpd -f -p 80 -h /www'],
      log_path: 'server/0.log',
      labels: { role: 'server' },
      ...shared,
    },
  });
  const side = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: podConfig,
    config: {
      metadata: { name: 'sidecar', attempt: 0 },
      image: { image: 'busybox' },
      command: ['sh', '-c', 'while true; do echo tick; sleep 0.2; done'],
      envs: [{ key: 'ROLE', value: 'side' }],
      log_path: 'sidecar/0.log',
      labels: { role: 'side' },
      ...shared,
    },
  });
  const created = await c.runtime.ListContainers({ filter: { pod_sandbox_id: pod, state: { state: 'CONTAINER_CREATED' } } });
  assert.equal(created.containers.length, 2);
  await c.runtime.StartContainer({ container_id: web.container_id });
  await c.runtime.StartContainer({ container_id: side.container_id });
  const running = await c.runtime.ListContainers({ filter: { label_selector: { role: 'server' } } });
  assert.deepEqual(running.containers.map((x: { id: string; state: string }) => [x.id, x.state]), [[web.container_id, 'CONTAINER_RUNNING']]);
  await sleep(300);
  // Under the kubelet's pod cgroup.
  assert.ok(existsSync(`/sys/fs/cgroup/memory/${d.tag}/kubepods/pod-web/${web.container_id}`));

  // Shared localhost, PID namespace, hostname and resolv.conf from the sandbox.
  const sh = (cmd: string) => c.runtime.ExecSync({ container_id: side.container_id, cmd: ['sh', '-c', cmd], timeout: 10 });
  assert.equal((await sh('wget -qO- http://127.0.0.1:80/')).stdout.toString(), 'served\n');
  const procs = (await sh('ps')).stdout.toString();
  assert.match(procs, /httpd -f -p 80/);
  assert.match(procs, /^\s*\d+ (nobody|65534)\s+\/bin\/busybox sleep/m); // the infra, as the pod's user
  assert.equal((await sh('hostname; echo $ROLE')).stdout.toString(), 'webpod\nside\n');
  const resolv = (await sh('cat /etc/resolv.conf')).stdout.toString();
  assert.match(resolv, /nameserver 10\.96\.0\.10/);
  assert.match(resolv, /search default\.svc\.cluster\.local/);
  assert.match(resolv, /options ndots:5/);
  const failing = await sh('echo to-err >&2; exit 4');
  assert.equal(failing.exit_code, 4);
  assert.equal(failing.stderr.toString(), 'to-err\n');
  const t0 = Date.now();
  const slow = await codeOf(c.runtime.ExecSync({ container_id: side.container_id, cmd: ['sleep', '30'], timeout: 1 }));
  assert.equal(slow.code, 4, slow.details); // DEADLINE_EXCEEDED
  assert.ok(Date.now() - t0 < 10_000);

  // The host port of the sandbox reaches the server.
  assert.equal(await httpGet(hostPort), 'served\n');

  // Exec over SPDY with stdin, stdout, stderr and the exit status (remotecommand v4).
  const ex = await c.runtime.Exec({ container_id: side.container_id, cmd: ['sh', '-c', 'cat; echo e >&2; exit 3'], stdin: true, stdout: true, stderr: true });
  const r = await remoteCommand(ex.url, { stdin: 'hello over spdy\n' });
  assert.equal(r.protocol, 'v4.channel.k8s.io');
  assert.equal(r.stdout, 'hello over spdy\n');
  assert.equal(r.stderr, 'e\n');
  const status = JSON.parse(r.status);
  assert.equal(status.status, 'Failure');
  assert.equal(status.details.causes[0].message, '3');
  const ok = await c.runtime.Exec({ container_id: side.container_id, cmd: ['echo', 'fine'], stdout: true, stderr: true });
  assert.equal(JSON.parse((await remoteCommand(ok.url)).status).status, 'Success');

  // Attach to the sidecar's output.
  const at = await c.runtime.Attach({ container_id: side.container_id, stdout: true, stderr: true });
  const attached = await remoteCommand(at.url, { until: (o) => o.includes('tick\ntick\n') });
  assert.match(attached.stdout, /tick\ntick\n/);

  // Port-forward to the pod's port 80.
  const pf = await c.runtime.PortForward({ pod_sandbox_id: pod, port: [80] });
  const answer = await portForwardOnce(pf.url, 80, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.[01] 200/);
  assert.match(answer, /served\n$/);
  // The pod's loopback, as the kubelet means it: a server bound to 127.0.0.1 only is reached too.
  const pf2 = await c.runtime.PortForward({ pod_sandbox_id: pod, port: [8081] });
  assert.match(await portForwardOnce(pf2.url, 8081, 'GET / HTTP/1.0\r\n\r\n'), /served\n$/);
  const pf3 = await c.runtime.PortForward({ pod_sandbox_id: pod, port: [9] });
  assert.match(await portForwardOnce(pf3.url, 9, 'x'), /^error: failed to connect to port 9 of the pod/);
  // A URL is good once.
  await assert.rejects(portForwardOnce(pf.url, 80, 'GET / HTTP/1.0\r\n\r\n'), /HTTP 404/);

  // Logs in the CRI format under the pod's log directory.
  const log = readFileSync(join(logDir, 'server/0.log'), 'utf8');
  assert.match(log, /^\S+ stdout F started$/m);
  assert.match(log, /^\S+ stderr F oops$/m);
  assert.match(readFileSync(join(logDir, 'sidecar/0.log'), 'utf8'), /stdout F tick/);
  await c.runtime.ReopenContainerLog({ container_id: side.container_id });

  // Statistics.
  const cs = await c.runtime.ContainerStats({ container_id: side.container_id });
  assert.ok(cs.stats.memory.working_set_bytes.value > 0);
  assert.ok(cs.stats.cpu.usage_core_nano_seconds.value > 0);
  const all = await c.runtime.ListContainerStats({ filter: { pod_sandbox_id: pod } });
  assert.equal(all.stats.length, 2);
  const ps = await c.runtime.PodSandboxStats({ pod_sandbox_id: pod });
  assert.equal(ps.stats.linux.containers.length, 2);
  assert.equal(ps.stats.attributes.metadata.name, 'web');
  // The pod's endpoint, as the kubelet reads it for the pod's network metrics; its processes, counted.
  assert.equal(ps.stats.linux.network.default_interface.name, 'eth0');
  assert.ok(Number(ps.stats.linux.network.default_interface.tx_bytes.value) > 0, JSON.stringify(ps.stats.linux.network));
  assert.ok(Number(ps.stats.linux.process.process_count.value) >= 2, JSON.stringify(ps.stats.linux.process));

  // Stop with a grace period, then the whole pod.
  await c.runtime.StopContainer({ container_id: web.container_id, timeout: 2 });
  const ws = await c.runtime.ContainerStatus({ container_id: web.container_id });
  assert.equal(ws.status.state, 'CONTAINER_EXITED');
  assert.equal(ws.status.log_path, join(logDir, 'server/0.log'));
  assert.ok(ws.status.finished_at > 0);

  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  assert.equal((await c.runtime.PodSandboxStatus({ pod_sandbox_id: pod })).status.state, 'SANDBOX_NOTREADY');
  assert.equal((await c.runtime.ListContainers({ filter: { pod_sandbox_id: pod, state: { state: 'CONTAINER_RUNNING' } } })).containers.length, 0);
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  assert.equal((await c.runtime.ListPodSandbox({})).items.length, 0);
  assert.equal((await c.runtime.ListContainers({})).containers.length, 0);
  assert.equal((await codeOf(c.runtime.PodSandboxStatus({ pod_sandbox_id: pod }))).code, 5);
  // Stops and removals of what is not there are no error (the CRI asks for idempotent ones).
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  await c.runtime.StopContainer({ container_id: web.container_id, timeout: 0 });
  await c.runtime.RemoveContainer({ container_id: web.container_id });
});

test('bad requests get a clear status and make nothing', async () => {
  const unknown = await codeOf(c.runtime.RunPodSandbox({ config: { ...podConfig, metadata: { ...podConfig.metadata, uid: 'u2' }, port_mappings: [] }, runtime_handler: 'kata' }));
  assert.equal(unknown.code, 3);
  assert.match(unknown.details, /unknown runtime handler "kata"/);
  const vm = await codeOf(c.runtime.RunPodSandbox({ config: { ...podConfig, metadata: { ...podConfig.metadata, uid: 'u3' }, port_mappings: [] }, runtime_handler: 'vm' }));
  assert.match(vm.details, /vm/);
  assert.equal((await codeOf(c.runtime.RunPodSandbox({ config: { hostname: 'x' } }))).code, 3);
  assert.equal((await codeOf(c.runtime.CreateContainer({ pod_sandbox_id: 'nope', config: { metadata: { name: 'x' }, image: { image: 'busybox' } } }))).code, 5);
  assert.equal((await codeOf(c.runtime.ContainerStatus({ container_id: 'nope' }))).code, 5);
  assert.equal((await c.runtime.ListPodSandbox({})).items.length, 0);
  assert.equal((await c.image.ImageStatus({ image: { image: 'no-such-image:1' } })).image, null);
});
