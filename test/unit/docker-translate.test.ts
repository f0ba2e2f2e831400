import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { translateCreate, sharesToWeight, networkOf, namespaceOf, scratchOf } from '../../src/api/docker/translate.js';
import { toDockerError, withTag, DockerError } from '../../src/api/docker/errors.js';
import { humanDuration } from '../../src/api/docker/util.js';
import { VolumeStore } from '../../src/storage/volumes.js';
import { notFound } from '../../src/common/errors.js';
import type { Image } from '../../src/storage/types.js';

const image: Image = { id: 'sha256:' + 'a'.repeat(64), names: [], created: '', config: { ExposedPorts: { '80/tcp': {} } }, layers: [], history: [], size: 0, architecture: 'amd64', os: 'linux' };

test('a docker create body becomes a compute document', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-vol-'));
  try {
    const t = await translateCreate(
      {
        Image: 'busybox', Cmd: ['sh'], Entrypoint: null, Env: ['A=1', 'UNSET'], WorkingDir: '/w', User: '1:2', Hostname: 'h', Tty: true, OpenStdin: true,
        Labels: { l: 'v' }, StopSignal: 'SIGINT', StopTimeout: 3,
        HostConfig: { Binds: ['/tmp:/data:ro', 'named:/v'], Memory: 64 * 1024 * 1024, NanoCpus: 5e8, PidsLimit: 50, AutoRemove: true, PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '5000' }] }, NetworkMode: 'default', RestartPolicy: { Name: 'no' }, Isolation: 'process' },
      },
      'web', image, new VolumeStore(dir),
    );
    const d = t.req.Document!;
    assert.equal(t.req.Name, 'web');
    assert.deepEqual(d.Process, { CommandArgs: ['sh'], WorkingDirectory: '/w', Environment: { A: '1' }, UnsetEnvironment: ['UNSET'], User: '1:2', EmulateConsole: true, CreateStdInPipe: true });
    assert.deepEqual(d.Container!.Memory, { SizeInMB: 64 });
    assert.deepEqual(d.Container!.Processor, { Count: 0.5 });
    assert.deepEqual(d.Container!.Pids, { Limit: 50 });
    assert.deepEqual(d.Container!.Networking, { PortMappings: [{ Protocol: 'tcp', InternalPort: 80, ExternalPort: 5000, HostIp: '127.0.0.1' }] });
    assert.equal(d.Container!.MappedDirectories![0].ReadOnly, true);
    assert.equal(d.Container!.MappedDirectories![1].HostPath, join(dir, 'named', '_data'));
    assert.equal(d.AutoRemove, true);
    assert.equal(d.StopTimeoutSeconds, 3);
    // Docker's hyperv (and vm) is Silo's vm isolation; anything else is refused.
    assert.equal((await translateCreate({ Image: 'x', HostConfig: { Isolation: 'hyperv' } }, undefined, image, new VolumeStore(dir))).req.Document!.Isolation, 'vm');
    assert.equal((await translateCreate({ Image: 'x', HostConfig: { Isolation: 'vm' } }, undefined, image, new VolumeStore(dir))).req.Document!.Isolation, 'vm');
    assert.equal((await translateCreate({ Image: 'x', HostConfig: {} }, undefined, image, new VolumeStore(dir))).req.Document!.Isolation, undefined);
    await assert.rejects(translateCreate({ Image: 'x', HostConfig: { Isolation: 'bogus' } }, undefined, image, new VolumeStore(dir)), /invalid isolation \(bogus\)/);
    const all = await translateCreate({ Image: 'x', HostConfig: { PublishAllPorts: true } }, undefined, image, new VolumeStore(dir));
    // Publish-all asks the network service for a host port (0): it picks one at create (test/e2e/docker-ports.test.ts).
    assert.equal(all.req.Document!.Container!.Networking!.PortMappings![0].ExternalPort, 0);
    assert.ok(all.req.Document!.Container!.Networking!.PortMappings![0].InternalPort > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('small mappings', () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(networkOf('default'), undefined);
  assert.equal(networkOf('none'), 'none');
  // host and container:<id> are shared namespaces, not networks (namespaceOf); they never name a network.
  assert.throws(() => networkOf('host'), /not a network/);
  assert.deepEqual(namespaceOf('network', 'host', ['']), { Mode: 'host' });
  assert.deepEqual(namespaceOf('pid', 'container:web', ['']), { Mode: 'system', Target: 'web' });
  assert.equal(namespaceOf('ipc', 'shareable', ['', 'private', 'shareable']), undefined);
  assert.throws(() => namespaceOf('pid', 'bogus', ['']), /invalid pid mode: bogus/);
  assert.equal(scratchOf({ size: '64m' }), 64 * 1024 * 1024);
  assert.throws(() => scratchOf({ size: 'lots' }), /invalid storage option size/);
  assert.throws(() => scratchOf({ dm: '1' }), /unknown storage option/);
  assert.equal(withTag('busybox'), 'busybox:latest');
  assert.equal(withTag('localhost:5000/x'), 'localhost:5000/x:latest');
  assert.equal(withTag('a:b'), 'a:b');
  assert.deepEqual(toDockerError(notFound('container', 'x')), { status: 404, message: 'No such container: x' });
  assert.deepEqual(toDockerError(new DockerError(409, 'c')), { status: 409, message: 'c' });
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(150_000), '2 minutes');
  assert.equal(humanDuration(3_600_000), 'About an hour');
});

test('docker bodies and the create spec are checked against their schemas, naming the field', async () => {
  const { parseBody, ContainerCreate, ContainerUpdate } = await import('../../src/api/docker/schemas.js');
  const { checkSpecShape } = await import('../../src/compute/spec/validate.js');
  const bad = (schema: any, body: unknown, re: RegExp) => assert.throws(() => parseBody(schema, body), (e: any) => e.status === 400 && re.test(e.message));
  bad(ContainerCreate, { Image: 'b', Cmd: [1] }, /^invalid JSON for Cmd\.0: /);
  bad(ContainerCreate, { Image: 'b', HostConfig: { Memory: -5 } }, /^invalid JSON for HostConfig\.Memory: /);
  bad(ContainerCreate, { Image: 5 }, /^invalid JSON for Image: /);
  bad(ContainerUpdate, { CpuShares: 'x' }, /CpuShares/);
  // Docker clients send nulls and zero values for what the user did not set; unknown fields pass to the translation.
  assert.ok(parseBody(ContainerCreate, { Image: 'b', Cmd: null, Entrypoint: null, HostConfig: { Binds: null, MemorySwappiness: -1, PidsLimit: null }, Whatever: 1 }));
  assert.throws(() => checkSpecShape({ Image: 'b', Document: { Container: { Security: { Privileged: 'yes' } } } }), /Document\.Container\.Security\.Privileged/);
  assert.throws(() => checkSpecShape({ Image: 'b', Document: { Container: { Namespaces: { Pid: { Mode: 'pod' } } } } }), /Namespaces\.Pid/);
  assert.ok(checkSpecShape({ Image: 'b', Document: { Container: { Namespaces: { Network: { Mode: 'system', Target: 'sandbox' } }, Logging: { Path: '/var/log/pods/x/0.log' } } } }));
});

test('docker run options a spec cannot hold are refused, never dropped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-vol-'));
  try {
    const vols = { createVolume: async () => { throw new Error('no volumes here'); } } as any;
    const refuse = (hc: Record<string, unknown>, re: RegExp, extra: Record<string, unknown> = {}) => assert.rejects(translateCreate({ Image: 'x', ...extra, HostConfig: hc } as any, undefined, image, vols), re);
    await refuse({ BlkioWeight: 300 }, /HostConfig\.BlkioWeight is not supported/);
    const io = await translateCreate({ Image: 'x', HostConfig: { BlkioDeviceReadBps: [{ Path: '/dev/sda', Rate: 1048576 }], BlkioDeviceWriteIOps: [{ Path: '/dev/sdb', Rate: 50 }], BlkioDeviceWriteBps: [] } } as any, undefined, image, vols);
    assert.deepEqual(io.req.Document?.Container?.BlockIO, { ReadBps: [{ Path: '/dev/sda', Rate: 1048576 }], WriteIops: [{ Path: '/dev/sdb', Rate: 50 }] });
    await refuse({ Links: ['db:db'] }, /No such container: db/); // links work; one to a container that is not there is refused
    await refuse({ LogConfig: { Type: 'syslog' } }, /logging driver syslog/);
    await refuse({ OomScoreAdj: -500 }, /below the daemon's own/);
    await refuse({ Memory: 64 << 20, MemorySwap: 128 << 20 }, /no swap accounting/);
    await refuse({ NetworkMode: 'host', Dns: ['1.1.1.1'] }, /conflicting options/);
    await refuse({ SecurityOpt: ['seccomp=bogus'] }, /invalid --security-opt seccomp=bogus/);
    await refuse({ SecurityOpt: ['apparmor=docker-default'] }, /--security-opt apparmor=docker-default is not supported/);
    await refuse({ UTSMode: 'host' }, /conflicting options: domainname and the UTS mode/, { Domainname: 'corp' });
    await refuse({ NanoCpus: 5e8, CpuPeriod: 100000 }, /Nano CPUs and CPU Period cannot both be set/);
    await refuse({ NanoCpus: 5e8, CpuQuota: 50000 }, /Nano CPUs and CPU Quota cannot both be set/);
    await refuse({ CpuPeriod: 500, CpuQuota: 5000 }, /CPU cfs period can not be less than 1ms/);
    await refuse({ CpuQuota: 500 }, /CPU cfs quota can not be less than 1ms/);
    await refuse({ CpuPeriod: 100000 }, /--cpu-period without --cpu-quota/);
    const q = await translateCreate({ Image: 'x', HostConfig: { CpuPeriod: 50000, CpuQuota: 25000 } } as any, undefined, image, vols);
    assert.deepEqual(q.req.Document!.Container!.Processor, { Count: 0.5 });
    const dom = await translateCreate({ Image: 'x', Domainname: 'corp', HostConfig: { Sysctls: { 'net.core.somaxconn': '512' } } } as any, undefined, image, vols);
    assert.deepEqual(dom.req.Document!.Container!.Sysctls, { 'net.core.somaxconn': '512', 'kernel.domainname': 'corp' });
    const ok = await translateCreate({ Image: 'x', HostConfig: { NetworkMode: 'container:web', PidMode: 'host', IpcMode: 'shareable', ReadonlyRootfs: true, CapAdd: ['NET_ADMIN'], Tmpfs: { '/run': 'size=1m' }, StorageOpt: { size: '64m' }, LogConfig: { Type: 'none' }, NanoCpus: 1e9, CpuShares: 512, Sysctls: { 'kernel.shmmax': '1000000' }, OomScoreAdj: 500 } } as any, undefined, image, vols);
    const c = ok.req.Document!.Container!;
    assert.deepEqual([c.Processor, c.Sysctls, c.OomScoreAdj], [{ Count: 1, Shares: 512 }, { 'kernel.shmmax': '1000000' }, 500]);
    assert.deepEqual(c.Namespaces, { Network: { Mode: 'system', Target: 'web' }, Pid: { Mode: 'host' } });
    assert.equal(c.Networking, undefined);
    assert.deepEqual(c.Security, { CapAdd: ['NET_ADMIN'], ReadOnlyRoot: true });
    assert.deepEqual(c.Tmpfs, [{ ContainerPath: '/run', Options: ['size=1048576'] }]);
    assert.deepEqual([c.Storage, c.Logging], [{ ScratchSizeInBytes: 64 << 20 }, { Driver: 'none' }]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
