// Unit tests of the process backend's pure parts: OCI spec generation, seccomp profile, user resolution,
// log parsing and conmon argument/error handling.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec, buildProcess, capabilitySet, rlimitsOf, weightToShares, DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS } from '../../src/compute/process/spec.js';
import { checkCwd, parseNofileHard } from '../../src/compute/resolve.js';
import { defaultSeccompProfile, ALLOWED_SYSCALLS, CLONE_NAMESPACE_FLAGS } from '../../src/compute/process/seccomp.js';
import { resolveUser } from '../../src/compute/user.js';
import { parseRecord, LineAssembler, timeNs } from '../../src/compute/logs.js';
import { buildConmonArgs, runtimeErrorMessage } from '../../src/compute/process/conmon.js';
import type { InitOptions } from '../../src/compute/backend.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n# comment\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n';
const root = resolveUser('root', PASSWD, GROUP);

const ROOT = { layers: [{ chainId: 'sha256:a', path: '/var/lib/silo/layers/a/diff' }], scratch: { path: '/var/lib/silo/scratch/c1.img', format: 'ext4' as const, sizeBytes: 1 << 30 }, overlayOptions: [] };

function init(over: Partial<InitOptions & { rootfs: string }> = {}): InitOptions & { rootfs: string } {
  return {
    id: 'c1', name: 'n', root: ROOT, rootfs: '/var/lib/silo/rootfs', hostname: 'h',
    process: { args: ['sh'], env: ['FOO=1'], cwd: '/', user: 'root', tty: false, stdin: false },
    mounts: [], resources: {}, ...over,
  };
}
const spec = (o = init(), user = root, nofileHard = 20000) => buildSpec(o, { cgroupParent: 'silo', nofileHard, user }) as any;

test('capabilities: docker default 14 for root, none effective/permitted for other users', () => {
  const s = spec();
  assert.equal(DEFAULT_CAPS.length, 14);
  assert.deepEqual(s.process.capabilities.bounding, DEFAULT_CAPS);
  assert.deepEqual(s.process.capabilities.effective, DEFAULT_CAPS);
  assert.deepEqual(s.process.capabilities.permitted, DEFAULT_CAPS);
  assert.equal(s.process.capabilities.inheritable, undefined);
  assert.equal(s.process.capabilities.ambient, undefined);
  const n = spec(init(), resolveUser('nobody', PASSWD, GROUP));
  assert.deepEqual(n.process.capabilities.bounding, DEFAULT_CAPS);
  assert.deepEqual(n.process.capabilities.effective, []);
  assert.deepEqual(n.process.capabilities.permitted, []);
  assert.ok(!DEFAULT_CAPS.includes('CAP_SYS_ADMIN'));
});

test('hardening: no new privileges, masked and read-only paths, no oom_score_adj, namespaces', () => {
  const s = spec();
  assert.equal(s.process.noNewPrivileges, true);
  assert.deepEqual(s.linux.maskedPaths, MASKED_PATHS);
  assert.ok(s.linux.maskedPaths.includes('/proc/kcore') && s.linux.maskedPaths.includes('/sys/firmware'));
  assert.deepEqual(s.linux.readonlyPaths, READONLY_PATHS);
  assert.ok(!JSON.stringify(s).includes('oomScoreAdj'));
  assert.deepEqual(s.linux.namespaces.map((n: any) => n.type), ['mount', 'pid', 'ipc', 'uts', 'cgroup', 'network']);
  assert.equal(s.linux.namespaces[5].path, undefined);
  const j = spec(init({ netnsPath: '/run/netns/silo-x' }));
  assert.deepEqual(j.linux.namespaces[5], { type: 'network', path: '/run/netns/silo-x' });
  assert.equal(s.linux.cgroupsPath, '/silo/c1');
  assert.deepEqual(s.linux.resources.devices[0], { allow: false, access: 'rwm' });
  const dests = s.mounts.map((m: any) => m.destination);
  for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']) assert.ok(dests.includes(d), d);
  assert.ok(s.mounts.find((m: any) => m.destination === '/sys').options.includes('ro'));
  assert.ok(s.mounts.find((m: any) => m.destination === '/sys/fs/cgroup').options.includes('ro'));
});

test('rlimit NOFILE never exceeds the hard limit or 1048576', () => {
  assert.deepEqual(spec(init(), root, 20000).process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  assert.deepEqual(spec(init(), root, 4194304).process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 20000                files     \n';
  assert.equal(parseNofileHard(limits), 20000);
  assert.equal(parseNofileHard(limits.replace('20000', 'unlimited')), 1048576);
});

test('cwd: relative and /proc/self/fd paths are refused (CVE-2024-21626)', () => {
  assert.throws(() => checkCwd('tmp'), (e: any) => e.class === 'InvalidArgument');
  for (const c of ['/proc/self/fd/7', '/proc/self/fd', '/proc/1/fd/3', '/proc/thread-self/fd/8', '/proc//self/fd/7', '/x/../proc/self/fd/5']) {
    assert.throws(() => checkCwd(c), (e: any) => e.class === 'InvalidArgument', c);
  }
  assert.equal(checkCwd(''), '/');
  assert.equal(checkCwd('/srv/app'), '/srv/app');
  assert.throws(() => spec(init({ process: { ...init().process, cwd: '/proc/self/fd/7' } })), /not allowed/);
});

test('env: PATH, HOSTNAME, HOME and TERM (tty) filled in, caller values kept', () => {
  const s = spec(init({ process: { ...init().process, tty: true } }));
  // dockerd's order (compared side by side): PATH, HOSTNAME, TERM, the container's own, HOME.
  assert.deepEqual(s.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=h', 'TERM=xterm', 'FOO=1', 'HOME=/root']);
  const p = buildProcess({ args: ['x'], env: ['PATH=/bin', 'HOME=/h', 'HOSTNAME=mine'], cwd: '/', user: '', tty: false, stdin: false }, 'h', { nofileHard: 10, user: root }) as any;
  assert.deepEqual(p.env, ['PATH=/bin', 'HOSTNAME=mine', 'HOME=/h']);
});

test('user resolution against passwd and group text', () => {
  // The primary group is always in the list, as docker and containerd put it (`id` shows groups=<gid>).
  assert.deepEqual(resolveUser('root', PASSWD, GROUP), { uid: 0, gid: 0, additionalGids: [0], home: '/root', name: 'root' });
  assert.deepEqual(resolveUser('app', PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], home: '/home/app', name: 'app' });
  assert.deepEqual(resolveUser('1000', PASSWD, GROUP).additionalGids, [1000, 10, 29]);
  assert.deepEqual(resolveUser('4242', PASSWD, GROUP), { uid: 4242, gid: 0, additionalGids: [0], home: '/', name: undefined });
  assert.deepEqual(resolveUser('4242:77', '', ''), { uid: 4242, gid: 77, additionalGids: [77], home: '/', name: undefined });
  assert.equal(resolveUser('0', '', '').home, '/root');
  assert.equal(resolveUser('app:wheel', PASSWD, GROUP).gid, 10);
  assert.deepEqual(resolveUser('app:wheel', PASSWD, GROUP).additionalGids, [10]);
  assert.equal(resolveUser('', PASSWD, GROUP).uid, 0);
  assert.throws(() => resolveUser('ghost', PASSWD, GROUP), (e: any) => e.class === 'InvalidArgument' && /unable to find user ghost/.test(e.message));
  assert.throws(() => resolveUser('app:nogroupthere', PASSWD, GROUP), /unable to find group/);
  const s = spec(init(), resolveUser('app', PASSWD, GROUP));
  assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
});

test('resources map to linux.resources', () => {
  const s = spec(init({ resources: { memoryBytes: 64 << 20, cpus: 1.5, cpuWeight: 10000, pidsLimit: 20 } }));
  assert.deepEqual(s.linux.resources.memory, { limit: 64 << 20, swap: 64 << 20 });
  assert.deepEqual(s.linux.resources.cpu, { quota: 150000, period: 100000, shares: 262144 });
  assert.deepEqual(s.linux.resources.pids, { limit: 20 });
  assert.equal(spec().linux.resources.memory, undefined);
  assert.equal(weightToShares(1), 2);
  assert.equal(weightToShares(10000), 262144);
  assert.ok(weightToShares(100) < weightToShares(200));
});

test('mounts: mapped directories and etc files become bind mounts', () => {
  const s = spec(init({
    mounts: [{ HostPath: '/srv/data', ContainerPath: '/data', ReadOnly: true }, { HostPath: '/srv/rw', ContainerPath: '/rw' }],
    etcFiles: [{ hostPath: '/var/lib/silo/x/resolv.conf', containerPath: '/etc/resolv.conf' }],
  }));
  const byDest = (d: string) => s.mounts.find((m: any) => m.destination === d);
  assert.deepEqual(byDest('/data'), { destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'rprivate', 'ro'] });
  assert.ok(byDest('/rw').options.includes('rw'));
  // The etc files are the container's own copies: writable as dockerd binds them, read-only with a read-only root.
  assert.ok(byDest('/etc/resolv.conf').options.includes('rw'));
  const ro = spec(init({ etcFiles: [{ hostPath: '/var/lib/silo/x/resolv.conf', containerPath: '/etc/resolv.conf' }], security: { ReadOnlyRoot: true } }));
  assert.ok(ro.mounts.find((m: any) => m.destination === '/etc/resolv.conf').options.includes('ro'));
  assert.throws(() => spec(init({ mounts: [{ HostPath: 'rel', ContainerPath: '/x' }] })), /absolute/);
});

test('seccomp: deny by default with EPERM, dangerous calls absent, clone filtered, clone3 ENOSYS', () => {
  const p = defaultSeccompProfile();
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(p.defaultErrnoRet, 1);
  assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  for (const bad of ['kexec_load', 'init_module', 'finit_module', 'delete_module', 'mount', 'umount2', 'reboot', 'swapon', 'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'unshare', 'setns', 'clone', 'clone3', 'personality', 'io_uring_setup', 'name_to_handle_at', 'open_by_handle_at', 'clock_adjtime', 'settimeofday', 'pivot_root', 'userfaultfd']) {
    assert.ok(!ALLOWED_SYSCALLS.includes(bad), bad);
  }
  for (const good of ['read', 'write', 'openat', 'execve', 'futex', 'epoll_pwait', 'statx', 'getrandom', 'rseq', 'close_range', 'wait4', 'ptrace']) assert.ok(ALLOWED_SYSCALLS.includes(good), good);
  assert.equal(new Set(ALLOWED_SYSCALLS).size, ALLOWED_SYSCALLS.length, 'no duplicates');
  const clone = p.syscalls.find((r) => r.names.includes('clone'))!;
  assert.deepEqual(clone.args, [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  assert.equal(CLONE_NAMESPACE_FLAGS, 0x7e020000);
  assert.deepEqual(p.syscalls.find((r) => r.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  assert.ok(p.syscalls.filter((r) => r.names.includes('personality')).every((r) => r.args?.[0].op === 'SCMP_CMP_EQ'));
  assert.deepEqual(spec().linux.seccomp, p);
});

test('k8s-file log records and partial lines', () => {
  const r = parseRecord(Buffer.from('2024-01-02T03:04:05.123456789+00:00 stdout P hello wor'))!;
  assert.deepEqual({ ...r, data: r.data.toString() }, { time: '2024-01-02T03:04:05.123456789Z', stream: 'stdout', partial: true, data: 'hello wor' });
  assert.equal(parseRecord(Buffer.from('garbage')), undefined);
  const a = new LineAssembler();
  assert.equal(a.push(r), undefined);
  const e1 = a.push(parseRecord(Buffer.from('2024-01-02T03:04:05.2+00:00 stderr F err'))!)!;
  assert.equal(e1.data.toString(), 'err\n');
  const e2 = a.push(parseRecord(Buffer.from('2024-01-02T03:04:06.0+00:00 stdout F ld'))!)!;
  assert.deepEqual([e2.time, e2.data.toString()], ['2024-01-02T03:04:05.123456789Z', 'hello world\n']);
  a.push(parseRecord(Buffer.from('2024-01-02T03:04:07.0+00:00 stdout P no newline'))!);
  assert.deepEqual(a.flush().map((e) => e.data.toString()), ['no newline']);
  assert.equal(parseRecord(Buffer.from('2024-01-02T03:04:07.0+00:00 stdout F '))!.data.length, 0);
  assert.ok(timeNs('2024-01-02T03:04:05.000000002Z') > timeNs('2024-01-02T03:04:05.000000001+00:00'));
  assert.equal(timeNs('2024-01-02T04:04:05+01:00'), timeNs('2024-01-02T03:04:05Z'));
});

test('conmon arguments and runtime error messages', () => {
  const args = buildConmonArgs({
    conmon: '/usr/bin/conmon', runc: '/usr/sbin/runc', runcRoot: '/run/silo/runtime/runc', cid: 'c1', cuuid: 'e1', name: 'n',
    bundle: '/b', pidFile: '/b/pid', conmonPidFile: '/b/conmon.pid', persistDir: '/s', stdin: true, tty: true, execProcessSpec: '/b/process.json',
  });
  assert.ok(args.includes('--runtime-arg') && args.includes('--root=/run/silo/runtime/runc'));
  assert.ok(args.includes('-i') && args.includes('-t') && args.includes('-e') && args.includes('--exec-attach'));
  assert.deepEqual(args.slice(args.indexOf('-l'), args.indexOf('-l') + 2), ['-l', 'none']);
  const raw = 'time="2024-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: exec: \\"/x\\": stat /x: no such file or directory"\n';
  assert.equal(runtimeErrorMessage(raw), 'runc create failed: unable to start container process: exec: "/x": stat /x: no such file or directory');
  assert.equal(runtimeErrorMessage('line one\nline two\n'), 'line one; line two');
});

test('create spec security context: capabilities as docker computes them, bounded by what the daemon holds', () => {
  const held = [...DEFAULT_CAPS, 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'];
  assert.deepEqual(capabilitySet({ CapDrop: ['ALL'], CapAdd: ['net_admin'] }, held), ['CAP_NET_ADMIN']);
  assert.deepEqual(capabilitySet({ CapDrop: ['CHOWN'] }, held), DEFAULT_CAPS.filter((c) => c !== 'CAP_CHOWN'));
  assert.deepEqual(capabilitySet({ CapAdd: ['ALL'] }, held).sort(), [...held].sort());
  assert.deepEqual(capabilitySet({ Privileged: true, CapDrop: ['ALL'] }, held), held);
  assert.throws(() => capabilitySet({ CapAdd: ['SYS_RESOURCE'] }, held), /CAP_SYS_RESOURCE cannot be granted/);
  assert.throws(() => capabilitySet({ CapAdd: ['NOPE'] }, held), /unknown capability/);
  assert.deepEqual(rlimitsOf([{ Name: 'nproc', Soft: 10, Hard: 20 }], 4096), [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }, { type: 'RLIMIT_NPROC', hard: 20, soft: 10 }]);
  assert.throws(() => rlimitsOf([{ Name: 'nofile', Soft: 1, Hard: 99999 }], 4096), /above the daemon's own/);
});

test('create spec: joined and host namespaces, privileged, read-only root, tmpfs and shm in the OCI spec', () => {
  const s = spec(init({
    namespaces: { pid: { path: '/proc/42/ns/pid' }, ipc: { host: true }, uts: { host: true } }, netnsPath: '/run/netns/x',
    security: { ReadOnlyRoot: true, Seccomp: { Profile: 'unconfined' } }, tmpfs: [{ ContainerPath: '/run', Options: ['size=1024', 'exec'] }], shmSizeBytes: 4096,
  }));
  assert.deepEqual(s.linux.namespaces, [{ type: 'mount' }, { type: 'pid', path: '/proc/42/ns/pid' }, { type: 'cgroup' }, { type: 'network', path: '/run/netns/x' }]);
  assert.equal(s.hostname, undefined); // the host's UTS namespace: runc may not set a hostname
  assert.equal(s.root.readonly, true);
  assert.equal(s.linux.seccomp, undefined);
  assert.deepEqual(s.mounts.find((m: any) => m.destination === '/run').options, ['nosuid', 'nodev', 'noexec', 'size=1024', 'exec']);
  assert.ok(s.mounts.find((m: any) => m.destination === '/dev/shm').options.includes('size=4096'));
  const p = buildSpec(init({ security: { Privileged: true } }), { cgroupParent: 'silo', nofileHard: 20000, user: root, daemonCaps: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] }) as any;
  assert.deepEqual(p.process.capabilities.bounding, ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
  assert.deepEqual([p.linux.maskedPaths, p.linux.readonlyPaths, p.linux.seccomp, p.process.noNewPrivileges], [[], [], undefined, false]);
  assert.deepEqual(p.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
  assert.ok(p.mounts.find((m: any) => m.destination === '/sys').options.includes('rw'));
});

test("a container's own network namespace gets dockerd's and containerd's sysctls (its --sysctl wins); a joined one none", () => {
  const open = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' };
  assert.deepEqual(spec().linux.sysctl, open);
  assert.deepEqual(spec(init({ sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shmmni': '100' } })).linux.sysctl, { ...open, 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shmmni': '100' });
  assert.equal(spec(init({ namespaces: { network: { path: '/proc/1/ns/net' } } })).linux.sysctl, undefined);
  assert.equal(spec(init({ namespaces: { network: { host: true } } })).linux.sysctl, undefined);
});
