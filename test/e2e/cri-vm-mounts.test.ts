// Mounts of a vm pod's containers, as a kubelet gives every container: a directory (written in the guest, read on the
// host and back), single files (/etc/hosts, /dev/termination-log), a read-only directory root in the guest cannot
// write even remounted, an emptyDir-like directory two containers of the pod share. All go through the pod VM's one
// virtiofs share (the VM restored from its template onto a copy of its RAM, mapped shared). The daemon SIGKILLed with
// the pod running re-adopts it and a new container's mount still reaches the guest; a create killed after its binds
// leaves none; removing a container takes its binds out; the pod's removal leaves no mount, virtiofsd or file, and
// the host's directories intact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leaks, sleep } from './harness.js';
import { codeOf } from './cri-client.js';
import { criFixture, removePods } from './cri-fixture.js';

const host = mkdtempSync(join(tmpdir(), 'silo-test-cri-vm-mounts-host-'));
const { d, logDir, c, restarted } = criFixture('cri-vm-mounts', async (d) => {
  await removePods(d, podCgroup);
  rmSync(host, { recursive: true, force: true });
});
const podCgroup = `${d.tag}/kubepods/pod-vmm`;

const podConfig = {
  metadata: { name: 'vmmounts', uid: 'uid-vmm', namespace: 'default', attempt: 0 },
  hostname: 'vmmounts',
  log_directory: logDir,
  linux: { cgroup_parent: `/${podCgroup}`, security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
};
const shared = { linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } } };
const mount = (container_path: string, host_path: string, readonly = false) => ({ container_path, host_path, readonly, propagation: 'PROPAGATION_PRIVATE' });

const container = (pod: string, name: string, mounts: ReturnType<typeof mount>[]) =>
  c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: podConfig,
    config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, command: ['sleep', '100000'], log_path: `${name}/0.log`, mounts, ...shared },
  });

/** Mount points of the pod VMs' shares on the host (the daemon's namespace is the test's). */
const shareMounts = () =>
  readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.includes(d.tag) && m.includes('/pod/share/')).sort();

/** The mounts under the share in each of its virtiofsd's namespaces (there, the share is `/`). */
function virtiofsdMounts(): string[][] {
  const out: string[][] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('virtiofsd') || !cmd.includes(d.tag)) continue;
      const lines = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' '));
      // The sandboxed process: its root is the share.
      if (!lines.some((f) => f[4] === '/' && f[3]?.endsWith('/pod/share'))) continue;
      out.push(lines.map((f) => f[4]).filter((m) => m && /^\/\d+\/\d+$/.test(m)).sort());
    } catch {
      /* gone */
    }
  }
  return out;
}

test('a vm pod: directory, single-file, read-only and shared mounts through the pod VM\'s share; daemon SIGKILL, re-adoption, clean removal', async () => {
  for (const dir of ['data', 'conf', 'empty', 'later']) mkdirSync(join(host, dir));
  writeFileSync(join(host, 'data/from-host'), 'host\n');
  writeFileSync(join(host, 'conf/setting'), 'read only\n');
  writeFileSync(join(host, 'hosts'), '127.0.0.1 localhost\n10.1.2.3 vmmounts # kubelet\n');
  writeFileSync(join(host, 'termination-log'), '');
  writeFileSync(join(host, 'later/f'), 'after the restart\n');

  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: podConfig, runtime_handler: 'vm' });
  // Restored from the template onto a copy of its RAM (virtiofsd maps it), its share's device hot-added.
  assert.match(d.logs, /up by template restore onto shared RAM .*ram copied \d+.*share added \d+/);
  // Its QEMU maps the copy, whose name is gone already (nothing to leave behind).
  const ramCopies = () => readdirSync('/dev/shm').filter((f) => f.includes(d.tag));
  assert.deepEqual(ramCopies(), []);
  const qemu = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${d.tag}-${pod.slice(0, 12)},`));
  assert.equal(qemu.length, 1);
  assert.match(readFileSync(`/proc/${qemu[0]}/maps`, 'utf8'), new RegExp(`/dev/shm/${d.tag}-${pod.slice(0, 12)}\\.ram \\(deleted\\)`));
  const a = await container(pod, 'a', [mount('/data', join(host, 'data')), mount('/etc/hosts', join(host, 'hosts')), mount('/conf', join(host, 'conf'), true), mount('/shared', join(host, 'empty'))]);
  const b = await container(pod, 'b', [mount('/shared', join(host, 'empty')), mount('/dev/termination-log', join(host, 'termination-log'))]);
  await c.runtime.StartContainer({ container_id: a.container_id });
  await c.runtime.StartContainer({ container_id: b.container_id });
  const sh = async (id: string, cmd: string) => {
    const r = await c.runtime.ExecSync({ container_id: id, cmd: ['sh', '-c', cmd], timeout: 60 });
    assert.equal(r.exit_code, 0, `${cmd}: ${r.stderr.toString()}`);
    return r.stdout.toString();
  };
  /** Asked again until it answers `want` (a change made elsewhere shows up in a guest within virtiofs' 1 s cache). */
  const eventually = async (id: string, cmd: string, want: string) => {
    let got = '';
    for (let i = 0; i < 50 && (got = await sh(id, cmd)) !== want; i++) await sleep(200);
    assert.equal(got, want, cmd);
  };

  // A directory: the host's file read in the guest, the guest's written on the host, the host's later one seen.
  assert.equal(await sh(a.container_id, 'cat /data/from-host; echo guest > /data/from-guest; mkdir -p /data/sub && echo deep > /data/sub/f'), 'host\n');
  assert.equal(readFileSync(join(host, 'data/from-guest'), 'utf8'), 'guest\n');
  assert.equal(readFileSync(join(host, 'data/sub/f'), 'utf8'), 'deep\n');
  writeFileSync(join(host, 'data/from-guest'), 'host again\n');
  await eventually(a.container_id, 'cat /data/from-guest', 'host again\n');
  // A single file: the kubelet's /etc/hosts is the container's (not the pod's own hosts file).
  assert.equal(await sh(a.container_id, 'cat /etc/hosts'), readFileSync(join(host, 'hosts'), 'utf8'));
  assert.equal(await sh(b.container_id, 'echo done > /dev/termination-log; ls -d /dev/null'), '/dev/null\n');
  assert.equal(readFileSync(join(host, 'termination-log'), 'utf8'), 'done\n');
  // Read-only: refused in the guest, and still refused once root in the guest remounted it read-write (the host's
  // bind under virtiofsd is read-only).
  assert.equal(
    await sh(a.container_id, 'cat /conf/setting; echo no > /conf/x 2>/dev/null; echo "write $?"; mount -o remount,rw /conf; echo "remount $?"; echo no > /conf/x 2>/dev/null; echo "remounted write $?"; echo no >> /conf/setting 2>/dev/null; echo "append $?"'),
    'read only\nwrite 1\nremount 0\nremounted write 1\nappend 1\n',
  );
  assert.deepEqual(readdirSync(join(host, 'conf')), ['setting']);
  assert.equal(readFileSync(join(host, 'conf/setting'), 'utf8'), 'read only\n');
  // An emptyDir-like directory shared by two containers of the pod.
  await sh(a.container_id, 'echo from-a > /shared/a');
  await eventually(b.container_id, 'cat /shared/a 2>/dev/null', 'from-a\n');
  await sh(b.container_id, 'echo from-b > /shared/b');
  await eventually(a.container_id, 'cat /shared/b 2>/dev/null', 'from-b\n');
  assert.deepEqual(readdirSync(join(host, 'empty')).sort(), ['a', 'b']);
  // Each mount is one bind in the share on the host, and the same in virtiofsd's namespace.
  const before = shareMounts();
  assert.equal(before.length, 6, `${before}`);
  // (virtiofsd's sandbox is two processes in one namespace)
  assert.deepEqual([...new Set(virtiofsdMounts().map((m) => m.length))], [6]);

  // The daemon SIGKILLed with the pod running: the next one re-adopts it; the mounts went on working meanwhile, and a
  // container made now binds into the share its running virtiofsd serves.
  await d.kill();
  await d.start();
  restarted();
  assert.equal((await c.runtime.PodSandboxStatus({ pod_sandbox_id: pod })).status.state, 'SANDBOX_READY');
  assert.equal(await sh(a.container_id, 'cat /data/sub/f /shared/b'), 'deep\nfrom-b\n');
  const late = await container(pod, 'late', [mount('/later', join(host, 'later'), true)]);
  await c.runtime.StartContainer({ container_id: late.container_id });
  assert.equal(await sh(late.container_id, 'cat /later/f'), 'after the restart\n');
  await c.runtime.StopContainer({ container_id: late.container_id, timeout: 1 });
  await c.runtime.RemoveContainer({ container_id: late.container_id });
  assert.deepEqual(shareMounts(), before, "the removed container's bind left the share");

  // A create the daemon's death interrupts after its binds leaves none once the next daemon has recovered.
  await d.stop();
  await d.start({ SILO_FAULT_POINTS: 'vm.guest.after-bind' });
  restarted();
  const half = await container(pod, 'half', [mount('/data', join(host, 'data'))]);
  await codeOf(c.runtime.StartContainer({ container_id: half.container_id }));
  await d.exited();
  await d.start();
  restarted();
  assert.deepEqual(shareMounts(), before, 'the interrupted create left no bind');
  await c.runtime.RemoveContainer({ container_id: half.container_id });

  // Removing a container takes its binds out of the share, on the host and in virtiofsd's namespace.
  await c.runtime.StopContainer({ container_id: b.container_id, timeout: 1 });
  await c.runtime.RemoveContainer({ container_id: b.container_id });
  assert.equal(shareMounts().length, 4);
  assert.deepEqual([...new Set(virtiofsdMounts().map((m) => m.length))], [4]);
  assert.equal(await sh(a.container_id, 'cat /shared/b'), 'from-b\n');

  // The pod's removal leaves nothing: no mount, virtiofsd, socket, lock file or RAM copy; the host's files stay.
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  await sleep(100);
  assert.deepEqual(leaks(d.tag).filter((l) => !l.startsWith('cgroup:') && !l.startsWith('link:') && !l.startsWith('nft:')), []);
  assert.deepEqual(existsSync(`${d.runDir}/vm`) ? readdirSync(`${d.runDir}/vm`).filter((e) => /^[0-9a-f]{16}$/.test(e)) : [], []);
  assert.deepEqual(ramCopies(), []);
  assert.deepEqual(existsSync('/var/run/virtiofsd') ? readdirSync('/var/run/virtiofsd').filter((f) => f.includes(d.tag)) : [], []);
  assert.equal(readFileSync(join(host, 'data/sub/f'), 'utf8'), 'deep\n');
  assert.equal(readFileSync(join(host, 'later/f'), 'utf8'), 'after the restart\n');
  assert.deepEqual(readdirSync(join(host, 'empty')).sort(), ['a', 'b']);
});
