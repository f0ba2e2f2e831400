// The host side of the guest agent's wire format and the refusals of vm isolation: pure logic, no VM.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeList, decodeStrings, encodeFrame, encodeStrings, FrameReader, Op } from '../../src/compute/vm/channel.js';
import { checkVmDocument } from '../../src/compute/vm/refuse.js';
import { DISK_SLOTS, findAssets, hotAdd, HOTPLUG_SLOTS, MODERN_ONLY, qemuArgs, TCG_CACHE_MIB, type VmAssets } from '../../src/compute/vm/qemu.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { agentShareArgs, MAX_SHARES, sharesOf } from '../../src/compute/vm/virtiofs.js';
import { deadTail, fillRatio, JitTrim, parseInfoJit } from '../../src/compute/vm/jit.js';
import type { Qmp } from '../../src/compute/vm/qmp.js';
import { silentLogger } from '../../src/common/log.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ComputeSystemDocument } from '../../src/compute/types.js';

test('frames: length-prefixed, little-endian, split and joined across chunks', () => {
  const f = encodeFrame(Op.CREATE, 7, 0x01020304, Buffer.from('abc'));
  assert.equal(f.readUInt32LE(0), 9 + 3);
  assert.equal(f.readUInt8(4), Op.CREATE);
  assert.equal(f.readUInt32LE(5), 7);
  assert.equal(f.readUInt32LE(9), 0x01020304);
  const two = Buffer.concat([f, encodeFrame(Op.STATS, 0, 9)]);
  const got: [number, number, number, string][] = [];
  const r = new FrameReader();
  for (let i = 0; i < two.length; i += 5) r.push(two.subarray(i, i + 5), (op, proc, seq, p) => got.push([op, proc, seq, p.toString()]));
  assert.deepEqual(got, [[Op.CREATE, 7, 0x01020304, 'abc'], [Op.STATS, 0, 9, '']]);
  assert.throws(() => new FrameReader().push(Buffer.from([1, 0, 0, 0, 0]), () => {}), /bad frame length/);
});

test('strings: repeated keys keep their order, values may hold "=", NUL is refused', () => {
  const b = encodeStrings([['arg', 'sh'], ['arg', '-c'], ['env', 'A=b=c'], ['uid', 0]]);
  assert.deepEqual(decodeList(b), ['arg=sh', 'arg=-c', 'env=A=b=c', 'uid=0']);
  assert.equal(decodeStrings(b).get('env'), 'A=b=c');
  assert.throws(() => encodeStrings([['arg', 'a\0b']]), /NUL/);
});

test('vm isolation refuses what it cannot do yet, each in one line', () => {
  const doc = (c: Partial<ComputeSystemDocument['Container']>, extra: Partial<ComputeSystemDocument> = {}) =>
    ({ Isolation: 'vm', Container: { GuestOs: { HostName: 'h' }, Storage: { Image: 'busybox' }, ...c }, Process: {}, ...extra }) as ComputeSystemDocument;
  assert.doesNotThrow(() => checkVmDocument(doc({ Memory: { SizeInMB: 64 } })));
  // Bind mounts and volumes are virtiofs shares of whole, private directories; in a pod's VM binds through its share.
  assert.doesNotThrow(() => checkVmDocument(doc({ MappedDirectories: [{ HostPath: '/tmp', ContainerPath: '/x', ReadOnly: true, Propagation: 'rprivate' }] })));
  assert.throws(() => checkVmDocument(doc({ MappedDirectories: [{ HostPath: '/tmp', ContainerPath: '/x', Subpath: 'a' }] })), /vm isolation does not support volume subpaths yet$/);
  assert.throws(() => checkVmDocument(doc({ MappedDirectories: [{ HostPath: '/tmp', ContainerPath: '/x', Propagation: 'rshared' }] })), /rshared mount propagation/);
  assert.doesNotThrow(() => checkVmDocument(doc({ MappedDirectories: [{ HostPath: '/etc/hosts', ContainerPath: '/etc/hosts', ReadOnly: true }] }, { HostingSystemId: 'a'.repeat(64) })));
  assert.throws(() => checkVmDocument(doc({ MappedDirectories: [{ HostPath: '/tmp', ContainerPath: '/x', Propagation: 'rslave' }] }, { HostingSystemId: 'a'.repeat(64) })), /rslave mount propagation/);
  // The guest agent is the tiny init of a VM of its own; a pod's containers have their pod's.
  assert.doesNotThrow(() => checkVmDocument(doc({}, { Init: true })));
  const pod = 'a'.repeat(64);
  assert.throws(() => checkVmDocument(doc({}, { Init: true, HostingSystemId: pod })), /--init in a pod/);
  assert.throws(() => checkVmDocument(doc({ Security: { Privileged: true } })), /security option Privileged/);
  assert.doesNotThrow(() => checkVmDocument(doc({ Logging: { Driver: 'file', MaxSizeInBytes: 4096, MaxFiles: 3 } })));
  assert.throws(() => checkVmDocument(doc({ Logging: { Path: '/var/log/x.log' } })), /vm isolation does not support a log path/);
  assert.throws(() => checkVmDocument(doc({ Logging: { Driver: 'none' } })), /the none log driver/);
  assert.throws(() => checkVmDocument(doc({ BlockIO: { ReadBps: [{ Path: '/dev/vda', Rate: 1 << 20 }] } })), /block I\/O limits/);
});

test("a container in a pod's VM shares the pod's namespaces (PID or its own) and nothing else", () => {
  const pod = 'a'.repeat(64);
  const inPod = (c: Partial<ComputeSystemDocument['Container']>) =>
    ({ Isolation: 'vm', HostingSystemId: pod, Container: { GuestOs: { HostName: 'h' }, Storage: { Image: 'busybox' }, ...c }, Process: {} }) as ComputeSystemDocument;
  const sys = { Mode: 'system' as const, Target: pod };
  assert.doesNotThrow(() => checkVmDocument(inPod({ Namespaces: { Network: sys, Ipc: sys, Uts: sys, Pid: sys }, Logging: { Path: '/var/log/pods/x/0.log' }, Processor: { Shares: 512 }, OomScoreAdj: 500 })));
  assert.doesNotThrow(() => checkVmDocument(inPod({ Namespaces: { Network: sys, Pid: { Mode: 'private' } }, Security: { RunAsUser: 1000, NoNewPrivileges: true, Seccomp: { Profile: 'unconfined' } } })));
  assert.throws(() => checkVmDocument(inPod({ Namespaces: { Network: { Mode: 'host' } } })), /network namespace of the host in a VM pod/);
  assert.throws(() => checkVmDocument(inPod({ Namespaces: { Pid: { Mode: 'system', Target: 'b'.repeat(64) } } })), /pid namespace of another container/);
  assert.throws(() => checkVmDocument(inPod({ Security: { Seccomp: { Profile: 'default' } } })), /security option Seccomp/);
  assert.throws(() => checkVmDocument(inPod({ Logging: { Driver: 'none' } })), /log path or driver/);
  assert.throws(() => checkVmDocument(inPod({ CgroupParent: '/kubepods' })), /cgroup parent/);
});

test('one machine for templates and clones: only backends, the RAM mapping and the kernel (in RAM already) differ', () => {
  const a: VmAssets = { qemu: '/q', kernel: '/k', initramfs: '/i', accel: 'tcg', accelReason: '', tcgCacheMiB: 16, tcgTrim: true };
  const base = { name: 'n', dir: '/d', logFile: '/l', exitFile: '/e', size: { memoryMiB: 128, cpus: 1 } };
  const tpl = qemuArgs(a, { ...base, ram: { path: '/r', share: true } });
  const clone = qemuArgs(a, { ...base, ram: { path: '/r', share: false }, incoming: '/t/state', tap: 'tap0' });
  const devices = (args: string[]) => args.flatMap((x, i) => (args[i - 1] === '-device' ? [x.replace(/,netdev=\w+/, '')] : []));
  assert.deepEqual(devices(tpl), devices(clone));
  assert.ok(tpl.includes('memory-backend-file,id=ram,size=128M,mem-path=/r,share=on'));
  assert.ok(clone.includes('memory-backend-file,id=ram,size=128M,mem-path=/r,share=off'));
  assert.ok(clone.includes('-incoming') && !tpl.includes('-incoming'));
  assert.ok(clone.some((x) => x.startsWith('tap,id=n0,ifname=tap0,') && x.includes('vnet_hdr=off')));
  assert.ok(tpl.includes('-kernel') && tpl.includes('-initrd'));
  assert.ok(!clone.includes('-kernel') && !clone.includes('-initrd'), 'a clone loads nothing its template has in RAM');
  assert.ok(clone.includes('tcg,tb-size=16,split-wx=on'), 'the code cache is a memfd, so its dead tail can be punched out');
  assert.ok(qemuArgs({ ...a, tcgTrim: false }, base).includes('tcg,tb-size=16'));
  // The disk slots sit on the root complex; hot-plugging has one bridge behind one root port, not a port per device.
  assert.equal(devices(clone).filter((d) => d.startsWith('virtio-blk-pci') && d.endsWith('bus=pcie.0')).length, DISK_SLOTS);
  assert.deepEqual(devices(clone).filter((d) => /^pcie-(root-port|pci-bridge)/.test(d)), ['pcie-root-port,id=hprp,chassis=1', 'pcie-pci-bridge,id=hp,bus=hprp']);
});

test('hotAdd takes the first free slot of the bridge (the last with fromTop) and says when all are taken', async () => {
  const taken = new Set(['0x1', '0x2', `0x${HOTPLUG_SLOTS.toString(16)}`]);
  const added: Record<string, unknown>[] = [];
  const qmp = {
    async execute(cmd: string, args: Record<string, unknown>) {
      assert.equal(cmd, 'device_add');
      if (args.id === 'bad') throw new Error('QEMU: a property error');
      if (taken.has(args.addr as string)) throw new Error(`QEMU: PCI: slot ${args.addr} function 0 not available for virtio-blk-pci, in use by x`);
      taken.add(args.addr as string);
      added.push(args);
    },
  } as unknown as Parameters<typeof hotAdd>[0];
  await hotAdd(qmp, { driver: 'virtio-blk-pci', ...MODERN_ONLY, id: 'a' });
  await hotAdd(qmp, { driver: 'vhost-user-fs-pci', id: 'b' }, true);
  assert.deepEqual(added.map((d) => [d.id, d.bus, d.addr, d['disable-legacy']]), [['a', 'hp', '0x3', 'on'], ['b', 'hp', `0x${(HOTPLUG_SLOTS - 1).toString(16)}`, undefined]]);
  await assert.rejects(hotAdd(qmp, { driver: 'x', id: 'bad' }), /property error/, 'an error other than a taken slot is not retried');
  for (let i = 1; i <= HOTPLUG_SLOTS; i++) taken.add(`0x${i.toString(16)}`);
  await assert.rejects(hotAdd(qmp, { driver: 'virtio-blk-pci', id: 'c' }), new RegExp(`no free hot-plug slot \\(all ${HOTPLUG_SLOTS} taken`));
});

test("hotAdd on a VM from before the bridge (one that outlived its daemon) uses that VM's root ports", async () => {
  const tried: string[] = [];
  const qmp = {
    async execute(_cmd: string, args: Record<string, unknown>) {
      tried.push(`${args.bus}/${args.addr}`);
      if (!/^rp(9|1[0-6])$/.test(args.bus as string)) throw new Error(`QEMU: Bus '${args.bus}' not found`);
      if (args.bus === 'rp9') throw new Error('QEMU: PCI: slot 0 function 0 not available for virtio-blk-pci, in use by x');
    },
  } as unknown as Parameters<typeof hotAdd>[0];
  await hotAdd(qmp, { driver: 'virtio-blk-pci', id: 'a' });
  assert.deepEqual(tried, ['hp/0x1', 'rp9/0', 'rp10/0']);
  tried.length = 0;
  await hotAdd(qmp, { driver: 'vhost-user-fs-pci', id: 'b' }, true);
  assert.deepEqual(tried, ['hp/0x1f', 'rp16/0']);
});

test('the TCG cache size comes from SILO_VM_TCG_CACHE_MIB or the default, and nonsense is refused', async () => {
  const env = { SILO_VM_QEMU: '/bin/true' };
  const build = mkdtempSync(join(tmpdir(), 'silo-vm-assets-'));
  try {
    writeFileSync(join(build, 'vmlinux'), 'x');
    writeFileSync(join(build, 'initramfs.cpio'), 'x');
    assert.equal((await findAssets(build, { ...env, SILO_VM_ACCEL: 'tcg' })).tcgCacheMiB, TCG_CACHE_MIB);
    assert.equal((await findAssets(build, { ...env, SILO_VM_ACCEL: 'tcg', SILO_VM_TCG_CACHE_MIB: '8' })).tcgCacheMiB, 8);
    await assert.rejects(findAssets(build, { ...env, SILO_VM_TCG_CACHE_MIB: 'lots' }), /SILO_VM_TCG_CACHE_MIB must be/);
    assert.equal((await findAssets(build, { ...env, SILO_VM_ACCEL: 'tcg' })).tcgTrim, true);
    assert.equal((await findAssets(build, { ...env, SILO_VM_ACCEL: 'tcg', SILO_VM_TCG_TRIM: 'off' })).tcgTrim, false);
    await assert.rejects(findAssets(build, { ...env, SILO_VM_TCG_TRIM: 'no' }), /SILO_VM_TCG_TRIM must be on or off/);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
});

test("TCG's code cache: `info jit` read, and only its dead tail (above the fill point, page-aligned) punched", () => {
  const text = 'Translation buffer state:\ngen code size       2572259/16772096\nTB count            4480\n[...]\nTB flush count      4\nTB invalidate count 1\n';
  assert.deepEqual(parseInfoJit(text), { used: 2572259, capacity: 16772096, flushes: 4 });
  assert.equal(parseInfoJit('unknown command'), undefined);
  const file = 16 * 1024 * 1024;
  const tail = deadTail(2572259, file)!;
  assert.equal(tail.offset % 4096, 0);
  assert.ok(tail.offset >= 2572259 + 64 * 1024, 'room for the prologue before the region and the next block');
  assert.equal(tail.offset + tail.length, file);
  assert.equal(deadTail(15_000_000, file), undefined, 'under 2 MiB to give back: the VM is not stopped for it');
});

test('virtiofs shares: a shared memfd for guest RAM, one tagged vhost-user-fs device and agent bind each; bad ones refused', async () => {
  const a: VmAssets = { qemu: '/q', kernel: '/k', initramfs: '/i', accel: 'tcg', accelReason: '', tcgCacheMiB: 16, tcgTrim: true };
  const dir = mkdtempSync(join(tmpdir(), 'silo-shares-'));
  try {
    writeFileSync(join(dir, 'file'), '');
    const shares = await sharesOf('/run/v', [{ HostPath: dir, ContainerPath: '/data' }, { HostPath: dir, ContainerPath: '/a b:c', ReadOnly: true }]);
    const args = qemuArgs(a, { name: 'n', dir: '/d', logFile: '/l', exitFile: '/e', size: { memoryMiB: 128, cpus: 1 }, ram: { memfd: true }, shares });
    assert.ok(args.includes('memory-backend-memfd,id=ram,size=128M,share=on'));
    assert.ok(args.some((x) => x.startsWith('q35,memory-backend=ram,')));
    assert.ok(args.includes('socket,id=fs1,path=/run/v/fs1.sock'));
    assert.ok(args.includes('vhost-user-fs-pci,id=fsd1,chardev=fs1,tag=m1,bus=pcie.0'));
    // The path is last: it may hold ':' and spaces.
    assert.deepEqual(agentShareArgs(shares), [['bind', 'm0:0:/data'], ['bind', 'm1:1:/a b:c']]);
    await assert.rejects(sharesOf('/run/v', [{ HostPath: join(dir, 'file'), ContainerPath: '/f' }]), /vm isolation shares directories only: .*file is not a directory$/);
    await assert.rejects(sharesOf('/run/v', Array.from({ length: MAX_SHARES + 1 }, (_, i) => ({ HostPath: dir, ContainerPath: `/m${i}` }))), /at most 8 bind mounts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a trim of TCG's cache never undoes a pause: it leaves a paused VM alone, and a pause waits for a trim under way", async () => {
  const sent: string[] = [];
  let status = 'paused';
  const qmp = {
    execute: async (cmd: string) => {
      sent.push(cmd);
      if (cmd === 'query-status') return { status };
      if (cmd === 'stop') status = 'paused';
      if (cmd === 'cont') status = 'running';
      return {};
    },
  } as unknown as Qmp;
  const jit = new JitTrim(silentLogger(), 10);
  jit.watch('v', async () => ({ qmp, pid: process.pid }));
  await new Promise((r) => setTimeout(r, 50));
  jit.forget('v');
  assert.ok(sent.length > 0 && sent.every((c) => c === 'query-status'), `a paused VM is only looked at: ${sent.join(' ')}`);
  // A pause through serial() runs after the look in flight, never between its stop and cont.
  const order: string[] = [];
  const jit2 = new JitTrim(silentLogger(), 1);
  let release = () => {};
  jit2.watch('w', () => new Promise((r) => (release = () => r(undefined))).then(() => (order.push('look'), undefined)));
  await new Promise((r) => setTimeout(r, 20));
  const paused = jit2.serial('w', async () => void order.push('pause'));
  release();
  await paused;
  assert.deepEqual(order, ['look', 'pause']);
  jit2.forget('w');
});

test("TCG's filler: a fill that fell short sizes the next by the ratio it showed; a first one by the measured default", () => {
  const MiB = 1024 * 1024;
  assert.equal(fillRatio(undefined, 10 * MiB), 134);
  // 84 KiB of filler grew the cache by 6.9 MiB: 84 host bytes per filler byte, so the next fill is sized by that.
  assert.equal(Math.round(fillRatio({ kib: 84, usedBefore: 6.1 * MiB }, 13 * MiB)), 84);
  // No growth, or more than the default (a flush came between): the default.
  assert.equal(fillRatio({ kib: 84, usedBefore: 6 * MiB }, 6 * MiB), 134);
  assert.equal(fillRatio({ kib: 1, usedBefore: 0 }, 10 * MiB), 134);
});
