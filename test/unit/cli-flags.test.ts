import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildCreateRequest,
  buildExecProcess,
  normalizeSignal,
  parseCpus,
  parseEnvFile,
  parseEnvList,
  parseLabels,
  parseSize,
  parseVolume,
  parseDeviceRate,
  volumeNames,
} from '../../src/cli/flags.js';
import { CliError } from '../../src/cli/errors.js';

test('parseSize: docker suffixes are binary multiples', () => {
  assert.equal(parseSize('64m'), 64 * 1024 * 1024);
  assert.equal(parseSize('1g'), 1024 ** 3);
  assert.equal(parseSize('1G'), 1024 ** 3);
  assert.equal(parseSize('512k'), 512 * 1024);
  assert.equal(parseSize('100'), 100);
  assert.equal(parseSize('100b'), 100);
  assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSize('64mb'), 64 * 1024 * 1024);
  assert.equal(parseSize('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('2t'), 2 * 1024 ** 4);
});

test('parseSize: bad input throws a CliError naming the flag', () => {
  for (const bad of ['', 'm', '-1m', '64x', 'abc', '1..5g', '64 m b', '1e3']) {
    assert.throws(() => parseSize(bad, 'memory'), (e: unknown) => e instanceof CliError && /invalid memory/.test(e.message), bad);
  }
});

test('parseCpus and normalizeSignal', () => {
  assert.equal(parseCpus('0.5'), 0.5);
  assert.equal(parseCpus('2'), 2);
  assert.equal(parseCpus('.25'), 0.25);
  assert.throws(() => parseCpus('-1'), CliError);
  assert.throws(() => parseCpus('half'), CliError);
  assert.equal(normalizeSignal('term'), 'SIGTERM');
  assert.equal(normalizeSignal('SIGKILL'), 'SIGKILL');
  assert.equal(normalizeSignal('9'), '9');
  assert.throws(() => normalizeSignal('no such'), CliError);
});

test('-e: KEY=V sets, KEY alone copies from the environment or is left out', () => {
  const env = { HOME: '/root', EMPTY: '' };
  assert.deepEqual(parseEnvList(['A=1', 'B=x=y', 'C=', 'HOME', 'EMPTY', 'UNSET'], env), {
    A: '1',
    B: 'x=y',
    C: '',
    HOME: '/root',
    EMPTY: '',
  });
  assert.throws(() => parseEnvList(['=v'], env), CliError);
  assert.throws(() => parseEnvList(['A B=v'], env), /whitespaces/);
});

test('--env-file: comments, blank lines, KEY from the environment, no quote processing', () => {
  const text = '# comment\n\nA=1\n  B="quoted"\r\nHOME\nMISSING\n';
  assert.deepEqual(parseEnvFile(text, { HOME: '/h' }), { A: '1', B: '"quoted"', HOME: '/h' });
});

test('-v: host:ctr[:ro|rw], absolute paths only', () => {
  assert.deepEqual(parseVolume('/data:/mnt'), { HostPath: '/data', ContainerPath: '/mnt' });
  assert.deepEqual(parseVolume('/data:/mnt:ro'), { HostPath: '/data', ContainerPath: '/mnt', ReadOnly: true });
  assert.deepEqual(parseVolume('/data:/mnt:rw'), { HostPath: '/data', ContainerPath: '/mnt' });
  // A name is a named volume: its path comes from the daemon (volumeNames lists what to ask for); nocopy is its alone.
  assert.deepEqual(volumeNames(['data:/mnt', '/h:/x', 'data:/other:ro', 'cache:/c']), ['data', 'cache']);
  assert.deepEqual(parseVolume('data:/mnt', { data: '/v/data/_data' }), { HostPath: '/v/data/_data', ContainerPath: '/mnt', PopulateFromImage: true });
  assert.deepEqual(parseVolume('data:/mnt:ro,nocopy', { data: '/v/data/_data' }), { HostPath: '/v/data/_data', ContainerPath: '/mnt', ReadOnly: true });
  assert.throws(() => parseVolume('data:/mnt'), /its path was not asked of the daemon/);
  assert.throws(() => parseVolume('/data:/mnt:nocopy'), /unknown mode 'nocopy' \(ro or rw\)/);
  assert.throws(() => parseVolume('./data:/mnt'), /host path must be absolute/);
  assert.throws(() => parseVolume('/data:mnt'), /container path must be absolute/);
  assert.throws(() => parseVolume('/data'), /invalid volume specification/);
  assert.throws(() => parseVolume('/a:/b:z'), /unknown mode/);
  assert.throws(() => parseVolume('/a:/b:ro:x'), /invalid volume specification/);
});

test('-l: labels', () => {
  assert.deepEqual(parseLabels(['a=1', 'b', 'c=x=y']), { a: '1', b: '', c: 'x=y' });
  assert.throws(() => parseLabels(['=1']), CliError);
});

test('buildCreateRequest: the minimal request is just the image', () => {
  assert.deepEqual(buildCreateRequest('busybox', [], {}, { env: {} }), { Image: 'busybox' });
});

test('buildCreateRequest: every flag lands in the document', () => {
  const req = buildCreateRequest(
    'busybox',
    ['ls', '-l'],
    {
      name: 'web',
      env: ['A=1', 'FROM_ENV'],
      workdir: '/tmp',
      user: '1000:1000',
      hostname: 'box',
      volume: ['/srv:/srv:ro'],
      memory: '64m',
      cpus: '0.5',
      pidsLimit: '50',
      storageSize: '1g',
      entrypoint: '/bin/sh',
      label: ['x=y'],
      stopSignal: 'int',
      stopTimeout: '3',
      tty: true,
      interactive: true,
      rm: true,
    },
    { env: { FROM_ENV: 'e' }, envFiles: ['A=0\nB=2\n'], consoleSize: [40, 100] },
  );
  assert.deepEqual(req, {
    Image: 'busybox',
    Name: 'web',
    Document: {
      Container: {
        GuestOs: { HostName: 'box' },
        Storage: { ScratchSizeInBytes: 1024 ** 3 },
        MappedDirectories: [{ HostPath: '/srv', ContainerPath: '/srv', ReadOnly: true }],
        Memory: { SizeInMB: 64 },
        Processor: { Count: 0.5 },
        Pids: { Limit: 50 },
      },
      Process: {
        CommandArgs: ['ls', '-l'],
        Entrypoint: ['/bin/sh'],
        Environment: { A: '1', B: '2', FROM_ENV: 'e' },
        WorkingDirectory: '/tmp',
        User: '1000:1000',
        EmulateConsole: true,
        ConsoleSize: [40, 100],
        CreateStdInPipe: true,
      },
      AutoRemove: true,
      StopSignal: 'SIGINT',
      StopTimeoutSeconds: 3,
      Labels: { x: 'y' },
    },
  });
});

test('buildCreateRequest: --entrypoint "" clears, unlimited values are left out, storage-opt size', () => {
  const req = buildCreateRequest('img', [], { entrypoint: '', pidsLimit: '-1', cpus: '0', storageOpt: ['size=64m'], memory: '512k' }, { env: {} });
  assert.deepEqual(req.Document, {
    Container: { Storage: { ScratchSizeInBytes: 64 * 1024 * 1024 }, Memory: { SizeInMB: 0.5 } },
    Process: { Entrypoint: [] },
  });
});

test('--device-read-bps and the rest: sizes for bytes, counts for operations, as docker reads them', () => {
  assert.deepEqual(parseDeviceRate('/dev/sda:1mb', '--device-read-bps', false), { Path: '/dev/sda', Rate: 1048576 });
  assert.deepEqual(parseDeviceRate('/dev/sda:100', '--device-read-iops', true), { Path: '/dev/sda', Rate: 100 });
  assert.throws(() => parseDeviceRate('/dev/sda:1mb', '--device-read-iops', true), /must be an integer/);
  assert.throws(() => parseDeviceRate('sda:1mb', '--device-read-bps', false), /expected \/dev\/<device>:<rate>/);
  const req = buildCreateRequest('i', [], { deviceReadBps: ['/dev/sda:2m'], deviceWriteIops: ['/dev/sdb:7'] }, { env: {} });
  assert.deepEqual(req.Document?.Container?.BlockIO, { ReadBps: [{ Path: '/dev/sda', Rate: 2 << 20 }], WriteIops: [{ Path: '/dev/sdb', Rate: 7 }] });
});

test('buildCreateRequest: bad values are refused before any request', () => {
  assert.throws(() => buildCreateRequest('i', [], { volume: ['rel/x:/x'] }, { env: {} }), /absolute/);
  assert.throws(() => buildCreateRequest('i', [], { memory: 'lots' }, { env: {} }), /invalid memory/);
  assert.throws(() => buildCreateRequest('i', [], { workdir: 'tmp' }, { env: {} }), /absolute path/);
  assert.throws(() => buildCreateRequest('i', [], { storageOpt: ['foo=1'] }, { env: {} }), /storage option/);
  assert.throws(() => buildCreateRequest('i', [], { stopTimeout: 'soon' }, { env: {} }), /integer/);
  assert.throws(() => buildCreateRequest('i', [], { pidsLimit: '1.5' }, { env: {} }), /integer/);
});

test('buildExecProcess', () => {
  assert.deepEqual(buildExecProcess(['sh'], { env: ['A=1'], tty: true, interactive: true, workdir: '/w', user: 'u' }, { env: {}, consoleSize: [24, 80] }), {
    CommandArgs: ['sh'],
    Environment: { A: '1' },
    WorkingDirectory: '/w',
    User: 'u',
    EmulateConsole: true,
    ConsoleSize: [24, 80],
    CreateStdInPipe: true,
  });
  assert.deepEqual(buildExecProcess(['true'], {}, { env: {} }), { CommandArgs: ['true'] });
});

test('security, namespace, tmpfs, device, ulimit and dns flags map onto the create specification', () => {
  const r = buildCreateRequest('busybox', [], {
    readOnly: true, capDrop: ['ALL'], capAdd: ['NET_ADMIN'], securityOpt: ['no-new-privileges:false', 'seccomp=/etc/p.json'], groupAdd: ['2000', 'audio'],
    pid: 'container:web', ipc: 'host', uts: 'host', network: 'container:web', tmpfs: ['/run:size=1m,exec'], device: ['/dev/zero:/dev/z:r'],
    ulimit: ['nproc=100:200', 'core=0'], shmSize: '32m', cpusetCpus: '0', memorySwappiness: '10', memoryReservation: '32m', logDriver: 'json-file',
    sysctl: ['kernel.shmmni=1000', 'net.core.somaxconn=512'], oomScoreAdj: '300',
  }, { env: {} });
  const c = r.Document!.Container!;
  assert.deepEqual(c.Namespaces, { Network: { Mode: 'system', Target: 'web' }, Pid: { Mode: 'system', Target: 'web' }, Ipc: { Mode: 'host' }, Uts: { Mode: 'host' } });
  assert.equal(c.Networking, undefined);
  assert.deepEqual(c.Security, { ReadOnlyRoot: true, CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'], SupplementalGroups: [2000, 'audio'], NoNewPrivileges: false, Seccomp: { Profile: 'localhost', LocalhostPath: '/etc/p.json' } });
  assert.deepEqual(c.Tmpfs, [{ ContainerPath: '/run', Options: ['size=1048576', 'exec'] }]);
  assert.deepEqual(c.Devices, [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/z', Permissions: 'r' }]);
  assert.deepEqual(c.Ulimits, [{ Name: 'nproc', Soft: 100, Hard: 200 }, { Name: 'core', Soft: 0, Hard: 0 }]);
  assert.equal(c.ShmSizeInBytes, 32 * 1024 * 1024);
  assert.deepEqual(c.Processor, { CpusetCpus: '0' });
  assert.deepEqual(c.Memory, { Swappiness: 10, ReservationInBytes: 32 * 1024 * 1024 });
  assert.deepEqual(c.Logging, { Driver: 'file' });
  assert.deepEqual([c.Sysctls, c.OomScoreAdj], [{ 'kernel.shmmni': '1000', 'net.core.somaxconn': '512' }, 300]);
  const n = buildCreateRequest('busybox', [], { dns: ['10.0.0.53'], dnsSearch: ['corp'], dnsOption: ['ndots:2'], addHost: ['db:10.1.2.3'], macAddress: '02:42:ac:11:00:02' }, { env: {} });
  assert.deepEqual(n.Document!.Container!.Networking, { MacAddress: '02:42:ac:11:00:02', Dns: { Servers: ['10.0.0.53'], Search: ['corp'], Options: ['ndots:2'] }, ExtraHosts: [{ Name: 'db', IpAddress: '10.1.2.3' }] });
  assert.throws(() => buildCreateRequest('b', [], { network: 'host', publish: ['80:80'] }, { env: {} }), /conflicting options/);
  assert.throws(() => buildCreateRequest('b', [], { uts: 'container:x' }, { env: {} }), /invalid --uts/);
  assert.throws(() => buildCreateRequest('b', [], { securityOpt: ['apparmor=x'] }, { env: {} }), /invalid --security-opt/);
  assert.throws(() => buildCreateRequest('b', [], { ulimit: ['nproc'] }, { env: {} }), /invalid --ulimit/);
  assert.throws(() => buildCreateRequest('b', [], { logDriver: 'syslog' }, { env: {} }), /invalid --log-driver/);
});
