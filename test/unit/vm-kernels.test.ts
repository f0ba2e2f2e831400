// A vm-isolated container's own guest kernel: named by each door the same way, judged once, unpacked as QEMU boots it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDocument, validateDocument } from '../../src/compute/document.js';
import { checkVmDocument } from '../../src/compute/vm/refuse.js';
import { unpackVmlinux } from '../../src/compute/vm/kernels.js';
import { translateCreate, VM_KERNEL_LABEL } from '../../src/api/docker/translate.js';
import { buildCreateRequest } from '../../src/cli/flags.js';
import { VolumeStore } from '../../src/storage/volumes.js';
import type { Image } from '../../src/storage/types.js';

const image: Image = { id: 'sha256:' + 'a'.repeat(64), names: [], created: '', config: {}, layers: [], history: [], size: 0, architecture: 'amd64', os: 'linux' };
const PKG = 'linux-image-6.12.118+deb12-cloud-amd64';

test('the CLI flag and the Docker label both name the kernel in the document', async () => {
  const cli = buildCreateRequest('busybox', [], { isolation: 'vm', vmKernel: PKG }, { env: {} });
  assert.deepEqual(cli.Document?.VirtualMachine, { KernelPackage: PKG });
  const dir = await mkdtemp(join(tmpdir(), 'silo-vol-'));
  try {
    const t = await translateCreate({ Image: 'x', Labels: { [VM_KERNEL_LABEL]: PKG }, HostConfig: { Isolation: 'hyperv' } }, undefined, image, new VolumeStore(dir));
    assert.deepEqual(t.req.Document?.VirtualMachine, { KernelPackage: PKG });
    // docker inspect still shows the label it was given.
    assert.equal(t.req.Document?.Labels?.[VM_KERNEL_LABEL], PKG);
    await assert.rejects(translateCreate({ Image: 'x', Labels: { [VM_KERNEL_LABEL]: '' } }, undefined, image, new VolumeStore(dir)), /names no kernel package/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a guest kernel is for a vm-isolated system with a VM of its own, named as a Debian kernel package', async () => {
  const doc = (Isolation: string, KernelPackage: string) => buildDocument('f'.repeat(64), { Image: 'busybox', Document: { Isolation, VirtualMachine: { KernelPackage } } }, image);
  await validateDocument(doc('vm', PKG), ['process', 'vm']);
  assert.equal(doc('vm', PKG).VirtualMachine?.KernelPackage, PKG);
  await assert.rejects(validateDocument(doc('process', PKG), ['process', 'vm']), /^SiloError: a guest kernel \(linux-image-\S+\) is for vm isolation only: add --isolation vm/);
  for (const bad of ['bash', 'linux-image-', 'linux-image-6.1/../x', 'linux-image-X', 'linux-image-amd64:arm64']) {
    await assert.rejects(validateDocument(doc('vm', bad), ['process', 'vm']), /invalid guest kernel package/, bad);
  }
  const hosted = { ...doc('vm', PKG), HostingSystemId: 'a'.repeat(64) };
  assert.throws(() => checkVmDocument(hosted), /a guest kernel of its own in a pod/);
});

test('VirtualMachine.HostedMounts (a pod VM\'s share) is kept in the document, for a vm-isolated system with a VM of its own', async () => {
  const doc = (Isolation: string, extra: Record<string, unknown> = {}) => buildDocument('f'.repeat(64), { Image: 'busybox', Document: { Isolation, VirtualMachine: { HostedMounts: true }, ...extra } }, image);
  await validateDocument(doc('vm'), ['process', 'vm']);
  assert.deepEqual(doc('vm').VirtualMachine, { HostedMounts: true });
  await assert.rejects(validateDocument(doc('process'), ['process', 'vm']), /HostedMounts is for a vm-isolated system with a utility VM of its own/);
  await assert.rejects(validateDocument({ ...doc('vm'), HostingSystemId: 'a'.repeat(64) }, ['process', 'vm']), /HostedMounts is for a vm-isolated system with a utility VM of its own/);
});

test("the host's cloud kernel unpacks to an x86-64 ELF vmlinux; a file that is no bzImage is refused", async () => {
  const boot = (await readdir('/boot')).filter((f) => /^vmlinuz-.*-cloud-amd64$/.test(f)).sort().pop();
  assert.ok(boot, 'no /boot/vmlinuz-*-cloud-amd64 (scripts/setup.sh installs linux-image-cloud-amd64)');
  const dir = await mkdtemp(join(tmpdir(), 'silo-kernel-'));
  try {
    await unpackVmlinux('p', join('/boot', boot), join(dir, 'vmlinux'), dir);
    const head = (await readFile(join(dir, 'vmlinux'))).subarray(0, 20);
    assert.equal(head.readUInt32BE(0), 0x7f454c46);
    assert.equal(head.readUInt16LE(18), 62);
    assert.deepEqual((await readdir(dir)).sort(), ['vmlinux'], 'the payload file is removed');
    await writeFile(join(dir, 'junk'), Buffer.alloc(4096, 1));
    await assert.rejects(unpackVmlinux('p', join(dir, 'junk'), join(dir, 'out'), dir), /guest kernel p: junk is not an x86 bzImage/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
