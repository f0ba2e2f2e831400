// The CRI door's pure parts: platform checks, resource and security mapping, stream negotiation, SPDY header blocks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { checkPlatform, containerSpec, resourcesSpec, type ContainerConfig } from '../../src/api/cri/translate.js';
import { decodeHeaders, encodeHeaders, StoredDeflater } from '../../src/api/cri/spdy.js';
import { exitStatus, negotiate } from '../../src/api/cri/streaming.js';
import { imageUser } from '../../src/api/cri/images.js';
import { handlers, isolationOf } from '../../src/api/cri/runtime.js';
import { systemName, type SandboxMeta } from '../../src/api/cri/meta.js';
import { withCriSection } from '../../bench/report/cri.js';
import { infraSecurity, vmSize } from '../../src/api/cri/sandboxes.js';
import { cpus } from 'node:os';
import { criEventType } from '../../src/api/cri/events.js';
import { superblockUsage } from '../../src/storage/ext4-usage.js';
import type { Image } from '../../src/storage/types.js';
import { renderResolvConf } from '../../src/network/etc.js';
import { checkSysctl } from '../../src/compute/spec/validate.js';
import { rootfsPropagation } from '../../src/compute/process/spec.js';

const host = { os: 'linux', architecture: 'amd64' };

test('an image for another platform is refused with both platforms named', () => {
  checkPlatform({ os: 'linux', architecture: 'amd64' }, 'a', host);
  assert.throws(() => checkPlatform({ os: 'linux', architecture: 'arm64' }, 'img:1', host), /image img:1 is for linux\/arm64; this node runs linux\/amd64/);
  assert.throws(() => checkPlatform({ os: 'windows', architecture: 'amd64' }, 'w', host), /windows\/amd64/);
});

test('runtime handlers: runc and process are process isolation; vm is VM isolation where the host has it; others refused', () => {
  assert.equal(isolationOf('', ['process']), 'process');
  assert.equal(isolationOf('runc', ['process']), 'process');
  assert.equal(isolationOf('process', ['process', 'vm']), 'process');
  assert.equal(isolationOf('vm', ['process', 'vm']), 'vm');
  assert.throws(() => isolationOf('vm', ['process']), /no VM isolation/);
  assert.throws(() => isolationOf('kata', ['process']), /unknown runtime handler "kata"/);
});

test('CRI resources: memory, quota with shares, OOM score; what Silo cannot honour is refused', () => {
  const base = { cpu_period: 0, cpu_quota: 0, cpu_shares: 0, memory_limit_in_bytes: 0, oom_score_adj: 0, cpuset_cpus: '', cpuset_mems: '', hugepage_limits: [], unified: {}, memory_swap_limit_in_bytes: 0 };
  assert.deepEqual(resourcesSpec({ ...base, memory_limit_in_bytes: 64 * 1024 * 1024, memory_swap_limit_in_bytes: 64 * 1024 * 1024 }), { Memory: { SizeInMB: 64 } });
  assert.deepEqual(resourcesSpec({ ...base, cpu_period: 100000, cpu_quota: 50000 }), { Processor: { Count: 0.5 } });
  assert.deepEqual(resourcesSpec({ ...base, cpu_shares: 1024, cpu_quota: 20000, cpu_period: 100000 }), { Processor: { Count: 0.2, Shares: 1024 } });
  assert.deepEqual(resourcesSpec({ ...base, oom_score_adj: 1000 }), { OomScoreAdj: 1000 });
  assert.deepEqual(resourcesSpec({ ...base, hugepage_limits: [{ page_size: '2MB', limit: 0 }] }), {});
  assert.throws(() => resourcesSpec({ ...base, hugepage_limits: [{ page_size: '2MB', limit: 4096 }] }), /huge pages/);
  assert.throws(() => resourcesSpec({ ...base, unified: { 'memory.high': '1' } }), /unified/);
  assert.throws(() => resourcesSpec({ ...base, memory_limit_in_bytes: 1 << 26, memory_swap_limit_in_bytes: 1 << 27 }), /swap/);
});

test('image users: numeric uid, or a name', () => {
  assert.deepEqual(imageUser(''), { username: '' });
  assert.deepEqual(imageUser('1000:1000'), { uid: { value: 1000 }, username: '' });
  assert.deepEqual(imageUser('nginx'), { username: 'nginx' });
});

const sandbox: SandboxMeta = {
  kind: 'sandbox', metadata: { name: 'p', uid: 'u', namespace: 'ns', attempt: 1 }, labels: {}, annotations: {}, logDirectory: '/var/log/pods/x',
  runtimeHandler: '', hostname: 'p', namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' },
};
const image = { id: 'sha256:abc', os: 'linux', architecture: host.architecture } as unknown as Image;
const cfg = (over: Partial<ContainerConfig>): ContainerConfig => ({
  metadata: { name: 'c', attempt: 2 }, image: { image: 'busybox', annotations: {}, user_specified_image: '', runtime_handler: '' }, command: [], args: [], working_dir: '', envs: [],
  mounts: [], devices: [], labels: {}, annotations: {}, log_path: 'c/2.log', stdin: false, stdin_once: false, tty: false, linux: null, CDI_devices: [], ...over,
});

test('a container config becomes a create specification that joins its sandbox', () => {
  const { spec, meta } = containerSpec({ sandboxId: 'sb1', sandbox, image, isolation: 'process', config: cfg({
    command: ['/bin/app'], args: ['-v'], envs: [{ key: 'A', value: 'b' }],
    linux: { security_context: { privileged: false, namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' }, run_as_user: { value: 1000 }, run_as_group: { value: 100 }, run_as_username: '', readonly_rootfs: true, supplemental_groups: [5], no_new_privs: true, masked_paths: [], readonly_paths: [], seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' }, apparmor: null, seccomp_profile_path: '', apparmor_profile: '', capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['ALL'], add_ambient_capabilities: [] } } },
  }) });
  const doc = (spec as { Document: Record<string, any> }).Document;
  assert.equal((spec as { Name: string }).Name, 'k8s_c_p_ns_u_2');
  assert.deepEqual(doc.Process, { Entrypoint: ['/bin/app'], CommandArgs: ['-v'], Environment: { A: 'b' } });
  assert.deepEqual(doc.Container.Namespaces, { Network: { Mode: 'system', Target: 'sb1' }, Ipc: { Mode: 'system', Target: 'sb1' }, Pid: { Mode: 'private' }, Uts: { Mode: 'system', Target: 'sb1' } });
  assert.deepEqual(doc.Container.Security, { CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'], ReadOnlyRoot: true, NoNewPrivileges: true, Seccomp: { Profile: 'default' }, RunAsUser: 1000, RunAsGroup: 100, SupplementalGroups: [5] });
  assert.deepEqual(doc.Container.Logging, { Path: '/var/log/pods/x/c/2.log' });
  assert.equal(meta.logPath, '/var/log/pods/x/c/2.log');
  assert.equal(doc.Owner, 'silo-cri');
});

test('what a container config asks and Silo cannot do is refused, not dropped', () => {
  const sc = (o: object) => cfg({ linux: { security_context: { privileged: false, run_as_username: '', readonly_rootfs: false, supplemental_groups: [], no_new_privs: false, masked_paths: [], readonly_paths: [], seccomp_profile_path: '', apparmor_profile: '', ...o } } });
  const run = (c: ContainerConfig) => containerSpec({ sandboxId: 's', sandbox, image, isolation: 'process', config: c });
  assert.throws(() => run(sc({ apparmor: { profile_type: 'Localhost', localhost_ref: 'x' } })), /AppArmor/);
  assert.throws(() => run(sc({ namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', target_id: '', userns_options: { mode: 'POD' } } })), /user namespaces/);
  assert.throws(() => run(cfg({ CDI_devices: [{ name: 'x' }] })), /CDI/);
  assert.throws(() => run(cfg({ mounts: [{ container_path: '/a', host_path: '/b', readonly: false, propagation: 'PROPAGATION_PRIVATE', recursive_read_only: true, uidMappings: [], gidMappings: [] }] })), /recursive read-only/);
  assert.throws(() => run(cfg({ metadata: undefined })), /metadata/);
});

test('stream protocol negotiation follows the client order among what we speak', () => {
  assert.equal(negotiate(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'], ['v4.channel.k8s.io', 'channel.k8s.io']), 'v4.channel.k8s.io');
  assert.equal(negotiate('v5.channel.k8s.io, channel.k8s.io', ['v4.channel.k8s.io', 'channel.k8s.io']), 'channel.k8s.io');
  assert.equal(negotiate(undefined, ['portforward.k8s.io']), undefined);
  assert.equal(JSON.parse(exitStatus(0)).status, 'Success');
  assert.deepEqual(JSON.parse(exitStatus(2)).details.causes, [{ reason: 'ExitCode', message: '2' }]);
});

test('SPDY header blocks: encoded, sent as stored zlib blocks that one inflater reads in turn', () => {
  const d = new StoredDeflater();
  const a = d.block(encodeHeaders({ streamtype: 'error' }));
  const b = d.block(encodeHeaders({ StreamType: 'data', port: '80' }));
  const both = inflateSync(Buffer.concat([a, b]), { finishFlush: 2 });
  const first = encodeHeaders({ streamtype: 'error' }).length;
  assert.deepEqual(decodeHeaders(both.subarray(0, first)), { streamtype: 'error' });
  assert.deepEqual(decodeHeaders(both.subarray(first)), { streamtype: 'data', port: '80' });
});

test("a pod's DNS options replace resolv.conf's default ndots:0", () => {
  assert.equal(renderResolvConf(['10.96.0.10'], ['svc.cluster.local'], ['ndots:5', 'timeout:2']), '# Generated by silo\nnameserver 10.96.0.10\nsearch svc.cluster.local\noptions ndots:5 timeout:2\n');
});

test('system names stay within 128 characters and unique', () => {
  const long = 'x'.repeat(100);
  const a = systemName([long, 'pod', 'ns', 'uid-a', '0']);
  const b = systemName([long, 'pod', 'ns', 'uid-b', '0']);
  assert.ok(a.length <= 128 && b.length <= 128);
  assert.notEqual(a, b);
  assert.equal(systemName(['c', 'p', 'n', 'u', '1']), 'k8s_c_p_n_u_1');
});

test('sysctls: only those of namespaces the system has of its own', () => {
  checkSysctl('net.ipv4.ip_forward', '1', {});
  checkSysctl('kernel.shm_rmid_forced', '1', { Network: { Mode: 'host' } });
  checkSysctl('fs.mqueue.msg_max', '100', {});
  assert.throws(() => checkSysctl('net.core.somaxconn', '1', { Network: { Mode: 'host' } }), /host's network namespace/);
  assert.throws(() => checkSysctl('kernel.sem', '1', { Ipc: { Mode: 'host' } }), /host's IPC namespace/);
  assert.throws(() => checkSysctl('vm.swappiness', '1', {}), /not namespaced/);
  assert.throws(() => checkSysctl('net.x', 'a\nb', {}), /invalid sysctl/);
});

test('shared and slave bind mounts make the root propagate likewise', () => {
  assert.deepEqual(rootfsPropagation([{ HostPath: '/a', ContainerPath: '/a' }]), {});
  assert.deepEqual(rootfsPropagation([{ HostPath: '/a', ContainerPath: '/a', Propagation: 'rslave' }]), { rootfsPropagation: 'rslave' });
  assert.deepEqual(rootfsPropagation([{ HostPath: '/a', ContainerPath: '/a', Propagation: 'rslave' }, { HostPath: '/b', ContainerPath: '/b', Propagation: 'rshared' }]), { rootfsPropagation: 'rshared' });
});

test("BENCHMARKS.md's CRI section is replaced between its markers, or appended", () => {
  const sec = '<!-- cri:start -->\nnew\n<!-- cri:end -->';
  assert.equal(withCriSection('# B\n', sec), `# B\n\n${sec}\n`);
  assert.equal(withCriSection('# B\n\n<!-- cri:start -->\nold\n<!-- cri:end -->\ntail\n', sec), `# B\n\n${sec}\ntail\n`);
});

test("the pod's security context is the infra process'", () => {
  assert.deepEqual(infraSecurity(null), {});
  const sc = { privileged: false, readonly_rootfs: true, run_as_user: { value: 65534 }, run_as_group: { value: 65534 }, supplemental_groups: [7], seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' }, seccomp_profile_path: '' };
  assert.deepEqual(infraSecurity(sc), { ReadOnlyRoot: true, RunAsUser: 65534, RunAsGroup: 65534, SupplementalGroups: [7], Seccomp: { Profile: 'default' } });
  assert.deepEqual(infraSecurity({ ...sc, readonly_rootfs: false, run_as_user: null, run_as_group: null, supplemental_groups: [], seccomp: null, privileged: true }), { Privileged: true });
  assert.deepEqual(infraSecurity({ ...sc, run_as_user: null, readonly_rootfs: false, supplemental_groups: [], seccomp: null }), { RunAsUser: 0, RunAsGroup: 65534 });
});

test('stdin_once: kept (the first attach that had stdin closes it) only without a tty, as containerd; plain stdin stays open', () => {
  const proc = (o: Partial<ContainerConfig>) => (containerSpec({ sandboxId: 'sb1', sandbox, image, isolation: 'process', config: cfg(o) }).spec as { Document: Record<string, any> }).Document.Process;
  assert.deepEqual(proc({ stdin: true, stdin_once: true }), { CreateStdInPipe: true });
  assert.deepEqual(proc({ stdin: true, stdin_once: false }), { CreateStdInPipe: true, StdinOnce: false });
  assert.deepEqual(proc({ stdin: true, stdin_once: true, tty: true }), { EmulateConsole: true, CreateStdInPipe: true, StdinOnce: false });
  assert.deepEqual(proc({ stdin: false, stdin_once: true }), {});
});

test('compute system events as the CRI container event types', () => {
  assert.deepEqual(['create', 'start', 'restart', 'die', 'destroy', 'attach', 'exec_die'].map(criEventType), [
    'CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT', undefined, undefined,
  ]);
});

test('an ext4 superblock gives the blocks beyond the overhead and the inodes in use', () => {
  const sb = Buffer.alloc(1024);
  sb.writeUInt16LE(0xef53, 0x38);
  sb.writeUInt32LE(2, 0x18); // 4096-byte blocks
  sb.writeUInt32LE(16384, 0x00);
  sb.writeUInt32LE(16000, 0x10);
  sb.writeUInt32LE(262144, 0x04);
  sb.writeUInt32LE(250000, 0x0c);
  sb.writeUInt32LE(10000, 0x248);
  assert.deepEqual(superblockUsage(sb), { usedBytes: 2144 * 4096, inodesUsed: 384 });
  // 64-bit counts read their high words only with the 64bit feature.
  sb.writeUInt32LE(1, 0x150);
  assert.deepEqual(superblockUsage(sb), { usedBytes: 2144 * 4096, inodesUsed: 384 });
  sb.writeUInt32LE(0x80, 0x60);
  assert.equal(superblockUsage(sb)!.usedBytes, (2 ** 32 + 2144) * 4096);
  sb.writeUInt16LE(0, 0x38);
  assert.equal(superblockUsage(sb), undefined);
});

test('a vm pod: its VM sized by the pod total plus overhead; its containers run in the sandbox VM, the pod cgroup left to the VM', () => {
  assert.deepEqual(handlers(['process']), ['', 'runc', 'process']);
  assert.deepEqual(handlers(['process', 'vm']), ['', 'runc', 'process', 'vm']);
  assert.deepEqual(vmSize(undefined), {});
  const MiB = 1024 * 1024;
  const linux = { cgroup_parent: '', sysctls: {}, resources: { memory_limit_in_bytes: 192 * MiB, cpu_quota: 150000, cpu_period: 100000 }, overhead: { memory_limit_in_bytes: 64 * MiB, cpu_quota: 10000, cpu_period: 100000 } };
  assert.deepEqual(vmSize(linux), { Memory: { SizeInMB: 256 }, Processor: { Count: Math.min(cpus().length, 2) } });
  const doc = (containerSpec({ sandboxId: 'sb1', sandbox: { ...sandbox, cgroupParent: '/kubepods/pod1' }, image, isolation: 'vm', config: cfg({}) }).spec as { Document: Record<string, any> }).Document;
  assert.equal(doc.HostingSystemId, 'sb1');
  assert.equal(doc.Container.CgroupParent, undefined);
  assert.deepEqual(doc.Container.Namespaces.Network, { Mode: 'system', Target: 'sb1' });
});
