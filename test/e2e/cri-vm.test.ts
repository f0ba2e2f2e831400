// The CRI's RuntimeClass handler `vm`: one utility VM per pod (TCG here), its containers inside it, driven through the
// CRI as a kubelet drives it. One pod, to keep the wall time modest: two containers see the guest's kernel and share
// its localhost and PID namespace; exec, logs, stats, stop, remove; the daemon killed and restarted re-adopts them;
// a container whose create the daemon's death interrupted leaves nothing in the VM; the pod's removal leaves no VM,
// tap, disk or cgroup.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { get } from 'node:http';
import { leaks, sleep } from './harness.js';
import { codeOf } from './cri-client.js';
import { criFixture, removePods } from './cri-fixture.js';

const { d, logDir, c, restarted } = criFixture('cri-vm', async (d) => {
  if (process.env.SILO_TEST_DAEMON_LOG) writeFileSync(process.env.SILO_TEST_DAEMON_LOG, d.logs);
  await removePods(d, podCgroup);
});
const podCgroup = `${d.tag}/kubepods/pod-vm`;

const hostPort = 30000 + Math.floor(Math.random() * 10000);
const podConfig = {
  metadata: { name: 'vmpod', uid: 'uid-vm', namespace: 'default', attempt: 0 },
  hostname: 'vmpod',
  log_directory: logDir,
  dns_config: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: [] },
  port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: hostPort, host_ip: '127.0.0.1' }],
  linux: { cgroup_parent: `/${podCgroup}`, security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
};
const shared = { linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } } };
const hostBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8');

const httpGet = (port: number) =>
  new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let b = '';
      res.on('data', (x) => (b += x));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });

/** The disks and serial ports the pod's VM has, as its guest sees them (a container's /sys is the guest's). */
async function guestObjects(id: string): Promise<string[]> {
  const r = await c.runtime.ExecSync({ container_id: id, cmd: ['sh', '-c', 'cat /sys/block/vd*/serial /sys/class/virtio-ports/*/name'], timeout: 30 });
  return r.stdout.toString().split('\n').filter(Boolean).sort();
}

const container = (pod: string, name: string, command: string[], extra: Record<string, unknown> = {}) =>
  c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: podConfig,
    config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, command, log_path: `${name}/0.log`, ...shared, ...extra },
  });

test('a vm pod: two containers in one utility VM sharing its kernel, localhost and PID namespace; exec, logs, stats, stop, remove, restart, removal', async () => {
  assert.ok((await c.runtime.Status({})).runtime_handlers.some((h: { name: string }) => h.name === 'vm'));
  // What a VM pod cannot be is refused with its reason.
  const hostNet = await codeOf(c.runtime.RunPodSandbox({ config: { ...podConfig, linux: { security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } } }, runtime_handler: 'vm' }));
  assert.match(hostNet.details, /own kernel: it cannot use the host's network namespace/);

  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: podConfig, runtime_handler: 'vm' });
  const st = await c.runtime.PodSandboxStatus({ pod_sandbox_id: pod });
  assert.equal(st.status.state, 'SANDBOX_READY');
  assert.equal(st.status.runtime_handler, 'vm');
  assert.match(st.status.network.ip, /^\d+\.\d+\.\d+\.\d+$/);
  // The pod's QEMU is in the kubelet's pod cgroup.
  assert.ok(readdirSync('/sys/fs/cgroup').some((ctl) => existsSync(`/sys/fs/cgroup/${ctl}/${podCgroup}/vm-${pod}`)));

  // The server's security context as a kubelet sends one: masked and read-only /proc paths, no_new_privs.
  const kubeletSc = { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' }, masked_paths: ['/proc/kcore', '/proc/scsi', '/proc/acpi'], readonly_paths: ['/proc/sys'], no_new_privs: true, supplemental_groups: [4242] };
  const web = await container(pod, 'server', ['sh', '-c', 'mkdir -p /www && echo served > /www/index.html && httpd -p 80 -h /www && echo started && echo oops >&2 && exec sleep 100000'], { linux: { security_context: kubeletSc } });
  const side = await container(pod, 'side', ['sh', '-c', 'echo side up; exec sleep 100000'], { envs: [{ key: 'ROLE', value: 'side' }] });
  await c.runtime.StartContainer({ container_id: web.container_id });
  await c.runtime.StartContainer({ container_id: side.container_id });
  const running = await c.runtime.ListContainers({ filter: { pod_sandbox_id: pod, state: { state: 'CONTAINER_RUNNING' } } });
  assert.equal(running.containers.length, 2);
  const ports = (await guestObjects(web.container_id)).filter((n) => n.startsWith('silo.'));
  assert.equal(ports.filter((n) => /^silo\.(log|exit)\.\d+$/.test(n)).length, 4, `a log and an exit port for each: ${ports}`);

  const sh = (id: string, cmd: string, timeout = 30) => c.runtime.ExecSync({ container_id: id, cmd: ['sh', '-c', cmd], timeout });
  // One guest kernel for both: not the host's.
  const [a, b] = await Promise.all([sh(web.container_id, 'uname -r; cat /proc/sys/kernel/random/boot_id'), sh(side.container_id, 'uname -r; cat /proc/sys/kernel/random/boot_id')]);
  assert.equal(a.stdout.toString(), b.stdout.toString());
  const [kernel, bootId] = a.stdout.toString().split('\n');
  assert.notEqual(kernel, release());
  assert.notEqual(`${bootId}\n`, hostBootId);
  // Shared localhost and PID namespace, the pod's hostname and DNS, each its own root.
  assert.equal((await sh(side.container_id, 'wget -qO- http://127.0.0.1:80/')).stdout.toString(), 'served\n');
  assert.match((await sh(side.container_id, 'ps')).stdout.toString(), /httpd -p 80/);
  assert.equal((await sh(side.container_id, 'hostname; echo $ROLE; test -e /www || echo own-root')).stdout.toString(), 'vmpod\nside\nown-root\n');
  assert.match((await sh(side.container_id, 'cat /etc/resolv.conf')).stdout.toString(), /nameserver 10\.96\.0\.10/);
  assert.equal((await sh(web.container_id, 'wc -c < /proc/kcore; ls -A /proc/acpi | wc -l; touch /proc/acpi/x || echo read-only; echo 1 > /proc/sys/vm/drop_caches || echo read-only; grep NoNewPrivs /proc/self/status')).stdout.toString().replace(/[ \t]+/g, ' '), '0\n0\nread-only\nread-only\nNoNewPrivs: 1\n');
  assert.match((await sh(web.container_id, 'id -G')).stdout.toString(), /\b4242\b/);
  const failing = await sh(side.container_id, 'echo to-err >&2; exit 4');
  assert.equal(failing.exit_code, 4);
  assert.equal(failing.stderr.toString(), 'to-err\n');
  // The pod's host port reaches the server in the VM.
  assert.equal(await httpGet(hostPort), 'served\n');

  // CRI logs at the kubelet's path, written by QEMU from the container's log port.
  const log = readFileSync(join(logDir, 'server/0.log'), 'utf8');
  assert.match(log, /^\S+Z stdout F started$/m);
  assert.match(log, /^\S+Z stderr F oops$/m);
  const stats = await c.runtime.ContainerStats({ container_id: web.container_id });
  assert.ok(Number(stats.stats.memory.working_set_bytes.value) > 0);

  // A daemon killed and started again re-adopts the pod and its containers; the logs went on meanwhile.
  await d.kill();
  await d.start();
  restarted();
  assert.equal((await c.runtime.PodSandboxStatus({ pod_sandbox_id: pod })).status.state, 'SANDBOX_READY');
  assert.equal((await c.runtime.ContainerStatus({ container_id: side.container_id })).status.state, 'CONTAINER_RUNNING');
  assert.equal((await sh(side.container_id, 'wget -qO- http://127.0.0.1:80/')).stdout.toString(), 'served\n');

  // Stop one container (SIGTERM, then SIGKILL): the other and the VM stay.
  await c.runtime.StopContainer({ container_id: side.container_id, timeout: 2 });
  const stopped = (await c.runtime.ContainerStatus({ container_id: side.container_id })).status;
  assert.equal(stopped.state, 'CONTAINER_EXITED');
  assert.equal(stopped.exit_code, 143);
  assert.match(readFileSync(join(logDir, 'side/0.log'), 'utf8'), /stdout F side up/);
  await c.runtime.RemoveContainer({ container_id: side.container_id });
  assert.equal((await guestObjects(web.container_id)).filter((n) => /^silo\.(log|exit)\.\d+$/.test(n)).length, 2, "the removed container's ports left the VM");
  assert.equal((await sh(web.container_id, 'ps')).stdout.toString().match(/sleep 100000/g)?.length, 1, "the removed container's processes are gone");
  const serverOnly = await guestObjects(web.container_id);

  // A create the daemon's death interrupts (its disks and ports plugged, nothing run yet) leaves nothing in the VM.
  await d.stop();
  await d.start({ SILO_FAULT_POINTS: 'vm.guest.after-plug' });
  restarted();
  const half = await container(pod, 'half', ['true']);
  await codeOf(c.runtime.StartContainer({ container_id: half.container_id }));
  await d.exited();
  await d.start();
  restarted();
  assert.deepEqual(await guestObjects(web.container_id), serverOnly, 'only the server is in the VM');
  assert.equal((await sh(web.container_id, 'echo still')).stdout.toString(), 'still\n');
  await c.runtime.RemoveContainer({ container_id: half.container_id });

  // Stopping the pod stops its containers and its VM; removing it leaves nothing.
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  assert.equal((await c.runtime.PodSandboxStatus({ pod_sandbox_id: pod })).status.state, 'SANDBOX_NOTREADY');
  assert.equal((await c.runtime.ContainerStatus({ container_id: web.container_id })).status.state, 'CONTAINER_EXITED');
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  assert.deepEqual((await c.runtime.ListContainers({})).containers, []);
  assert.deepEqual((await c.runtime.ListPodSandbox({})).items, []);
  await sleep(100);
  // No QEMU, namespace (and so no tap), mount or loop device is left; the daemon's network stays until teardown.
  assert.deepEqual(leaks(d.tag).filter((l) => !l.startsWith('cgroup:') && !l.startsWith('link:') && !l.startsWith('nft:')), []);
  assert.deepEqual(readdirSync(`${d.stateDir}/vm/systems`), []);
  assert.ok(!readdirSync('/sys/fs/cgroup').some((ctl) => existsSync(`/sys/fs/cgroup/${ctl}/${podCgroup}/vm-${pod}`)));
});
