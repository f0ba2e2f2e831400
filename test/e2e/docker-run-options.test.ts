// docker run options through the unmodified docker CLI: each one works as in docker or is refused with a clear
// error and exit 125 — none is silently dropped (issue 15 item 7, issue 16 items 4 and 5).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture } from './docker-fixture.js';
import { request } from './native-client.js';

const fx = new DockerFixture();
const docker = (args: string[], o?: Parameters<DockerFixture['run']>[1]) => fx.run(args, o);
/** `docker run --rm <opts> busybox sh -c <script>` → stdout, asserting it worked. */
async function sh(opts: string[], script: string): Promise<string> {
  const r = await docker(['run', '--rm', ...opts, 'busybox', 'sh', '-c', script]);
  assert.equal(r.code, 0, `${opts.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
/** The option is refused: exit 125 and one line naming why. */
async function refused(opts: string[], re: RegExp): Promise<void> {
  const r = await docker(['run', '--rm', ...opts, 'busybox', 'true']);
  assert.equal(r.code, 125, `${opts.join(' ')} was not refused: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, re);
}

before(() => fx.start());
after(async () => assert.deepEqual(await fx.teardown(), []));

test('--read-only, --tmpfs and --mount type=tmpfs, --shm-size', async () => {
  const ro = await docker(['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
  assert.equal(ro.code, 1);
  assert.match(ro.stderr, /Read-only file system/);
  const out = await sh(['--read-only', '--tmpfs', '/w:size=1m', '--mount', 'type=tmpfs,destination=/t,tmpfs-size=2097152', '--shm-size', '32m'],
    'echo hi > /w/f && cat /w/f && df -k /w /t /dev/shm | tail -3 | awk \'{print $2}\'');
  assert.equal(out, 'hi\n1024\n2048\n32768\n');
});

test('--cap-add/--cap-drop, --privileged, and what the daemon does not hold', async () => {
  assert.equal(await sh(['--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN'], 'grep CapBnd /proc/self/status'), 'CapBnd:\t0000000000001000\n');
  assert.equal(await sh(['--cap-drop', 'CHOWN'], 'chown 1 /tmp 2>&1 | grep -c "not permitted"'), '1\n');
  const profile = join(tmpdir(), `silo-seccomp-${process.pid}.json`);
  await writeFile(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
  try {
    assert.equal(await sh(['--security-opt', `seccomp=${profile}`], 'mkdir /tmp/d 2>&1 | sed "s/.*: //"; grep Seccomp: /proc/self/status'), 'Operation not permitted\nSeccomp:\t2\n');
  } finally {
    await rm(profile, { force: true });
  }
  assert.equal(await sh(['--security-opt', 'seccomp=unconfined', '--security-opt', 'no-new-privileges=false', '--security-opt', 'systempaths=unconfined'],
    'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; grep -c " /proc/keys " /proc/self/mounts || true'), 'NoNewPrivs:\t0\nSeccomp:\t0\n0\n');
  await refused(['--security-opt', 'apparmor=docker-default'], /not supported/);
  await refused(['--cap-add', 'SYS_RESOURCE'], /CAP_SYS_RESOURCE cannot be granted: the daemon itself does not hold it/);
  const own = (await readFile('/proc/self/status', 'utf8')).match(/CapBnd:\t(\w+)/)![1];
  const priv = await sh(['--privileged'], 'grep -E "^(CapBnd|Seccomp):" /proc/self/status; test -c /dev/loop-control && echo devices; grep -c " /proc/keys " /proc/self/mounts || true');
  assert.equal(priv, `CapBnd:\t${own}\nSeccomp:\t0\ndevices\n0\n`);
});

test('--add-host, --dns/--dns-search/--dns-option, --mac-address, /etc/hostname', async () => {
  const out = await sh(['--add-host', 'db.internal:10.1.2.3', '--dns', '10.9.9.9', '--dns-search', 'example.com', '--dns-option', 'ndots:2', '--mac-address', '02:42:ac:11:00:99', '--hostname', 'hh'],
    'grep db.internal /etc/hosts; grep -v "^#" /etc/resolv.conf; cat /sys/class/net/eth0/address /etc/hostname');
  assert.equal(out, '10.1.2.3\tdb.internal\nnameserver 10.9.9.9\nsearch example.com\noptions ndots:2\n02:42:ac:11:00:99\nhh\n');
  await refused(['--add-host', 'x:host-gateway'], /host-gateway is not supported/);
});

test('--domainname sets the UTS namespace\'s domain name, shown by inspect; with the host\'s UTS namespace it is refused', async () => {
  assert.equal(await sh(['--hostname', 'h1', '--domainname', 'example.org'], 'hostname; cat /proc/sys/kernel/domainname'), 'h1\nexample.org\n');
  // /etc/hosts names the container's address by its FQDN first, as docker writes it, so hostname -f gives that.
  assert.equal(await sh(['--hostname', 'h1', '--domainname', 'example.org'], 'hostname -f; grep -c "h1.example.org h1" /etc/hosts'), 'h1.example.org\n1\n');
  assert.equal(await sh(['--hostname', 'h2'], 'hostname -f'), 'h2\n');
  const r = await docker(['create', '--name', 'dom1', '--domainname', 'corp.test', 'busybox', 'true']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await docker(['inspect', '-f', '{{.Config.Domainname}}', 'dom1'])).stdout, 'corp.test\n');
  await docker(['rm', 'dom1']);
  await refused(['--uts', 'host', '--domainname', 'x.test'], /conflicting options: domainname and the UTS mode/);
});

test('--ulimit, --group-add and -u supplementary groups, --memory-swap/--memory-swappiness, --cpuset-cpus', async () => {
  const out = await sh(['--ulimit', 'nproc=100:200', '-u', '1000:1000', '--group-add', '2000', '--group-add', 'nogroup', '--memory', '64m', '--memory-swap', '64m', '--memory-swappiness', '10', '--cpuset-cpus', '0'],
    'grep "Max processes" /proc/self/limits | awk \'{print $3, $4}\'; id -G; cat /sys/fs/cgroup/memory/memory.swappiness /sys/fs/cgroup/cpuset/cpuset.cpus');
  assert.equal(out, '100 200\n1000 2000 65534\n10\n0\n');
  await refused(['--memory', '64m', '--memory-swap', '128m'], /no swap accounting/);
  await refused(['--ulimit', 'nofile=-1:-1'], /unlimited/);
  await refused(['--cpuset-cpus', '999'], /CpusetCpus/);
});

test('--memory-reservation sets the soft limit, docker update changes it live, inspect shows it; one above the limit is refused', async () => {
  const soft = '/sys/fs/cgroup/memory/memory.soft_limit_in_bytes';
  assert.equal(await sh(['--memory', '64m', '--memory-reservation', '32m'], `cat ${soft}`), `${32 * 1048576}\n`);
  await refused(['--memory', '64m', '--memory-reservation', '128m'], /Minimum memory limit can not be less than memory reservation limit/);
  await refused(['--memory-reservation', '1m'], /Minimum memory reservation allowed is 6MB/);
  const r = await docker(['run', '-d', '--name', 'res1', '--memory', '64m', '--memory-reservation', '32m', 'busybox', 'sleep', '600']);
  assert.equal(r.code, 0, r.stderr);
  try {
    // The limit and the reservation lowered together: each is judged against the other's new value.
    const u = await docker(['update', '--memory', '48m', '--memory-reservation', '40m', 'res1']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal((await docker(['exec', 'res1', 'cat', soft])).stdout, `${40 * 1048576}\n`);
    assert.equal((await docker(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}}', 'res1'])).stdout, `${48 * 1048576} ${40 * 1048576}\n`);
    const bad = await docker(['update', '--memory-reservation', '60m', 'res1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Minimum memory limit can not be less than memory reservation limit/);
    assert.equal((await docker(['exec', 'res1', 'cat', soft])).stdout, `${40 * 1048576}\n`, 'unchanged');
  } finally {
    await docker(['rm', '-f', 'res1']);
  }
});

test('-u takes the user\'s supplementary groups from the image\'s /etc/group, --group-add adds more', async () => {
  const ctx = await mkdtemp(join(tmpdir(), 'silo-groups-'));
  try {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo app:x:1000:1000::/:/bin/sh >> /etc/passwd && echo app:x:1000: >> /etc/group && echo extra:x:2000:app >> /etc/group\n');
    const b = await docker(['build', '-q', '-t', 'groups-img', ctx]);
    assert.equal(b.code, 0, b.stderr);
    const id = async (...opts: string[]) => (await docker(['run', '--rm', ...opts, 'groups-img', 'id', '-G'])).stdout;
    assert.equal(await id('-u', 'app'), '1000 2000\n');
    assert.equal(await id('-u', 'app:app'), '1000\n'); // an explicit group drops the implicit ones, as in docker
    assert.equal(await id('-u', 'app', '--group-add', '3000', '--group-add', 'root'), '1000 0 2000 3000\n'); // the kernel sorts them
    // The primary group is a supplementary one too, as dockerd sets it (compared with dockerd 7 Dec): `id` lists it.
    const full = async (...args: string[]) => (await docker([...args, 'id'])).stdout;
    assert.equal(await full('run', '--rm', '-u', 'app:extra', 'groups-img'), 'uid=1000(app) gid=2000(extra) groups=2000(extra)\n');
    assert.equal(await full('run', '--rm', '-u', 'nobody', 'groups-img'), 'uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n');
    assert.equal((await docker(['run', '-d', '--name', 'groups1', 'groups-img', 'sleep', '100'])).code, 0);
    assert.equal(await full('exec', 'groups1'), 'uid=0(root) gid=0(root) groups=0(root)\n');
    assert.equal(await full('exec', '-u', 'app', 'groups1'), 'uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n');
    assert.equal((await docker(['rm', '-f', 'groups1'])).code, 0);
    assert.match((await docker(['run', '--rm', '--group-add', 'wheel', 'groups-img', 'true'])).stderr, /Unable to find group wheel: no matching entries in group file/);
    assert.equal((await docker(['rmi', 'groups-img'])).code, 0);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test('--sysctl, --oom-score-adj, --cpu-shares beside --cpus', async () => {
  const out = await sh(['--sysctl', 'net.ipv4.ip_unprivileged_port_start=80', '--sysctl', 'kernel.shmmni=1000', '--oom-score-adj', '500', '--cpus', '1', '--cpu-shares', '512'],
    'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni /proc/self/oom_score_adj /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  assert.equal(out, '80\n1000\n500\n512\n100000\n');
  await refused(['--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1'], /host's network namespace/);
  // dockerd's defaults in a container's own network namespace (compared side by side): low ports and ping for all.
  assert.equal(await sh([], 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range'), '0\n0\t2147483647\n');
  assert.equal(await sh(['-u', '1000'], 'nc -l -p 80 & sleep 0.3; netstat -ltn | grep -c :80; kill %1'), '1\n');
  await refused(['--oom-score-adj', '-500'], /below the daemon's own/);
});

test('--pid, --ipc, --uts and --network: container:<id> and host', async () => {
  const t = await docker(['run', '-d', '--name', 'target', 'busybox', 'sleep', '1000']);
  assert.equal(t.code, 0, t.stderr);
  const ns = (k: string) => sh([], `readlink /proc/self/ns/${k}`);
  const inTarget = async (k: string) => (await docker(['exec', 'target', 'readlink', `/proc/self/ns/${k}`])).stdout;
  const joined = await sh(['--pid', 'container:target', '--ipc', 'container:target', '--network', 'container:target'], 'for k in pid ipc net; do readlink /proc/self/ns/$k; done; ps -o args | grep -c "^sleep 1000"');
  assert.equal(joined, `${await inTarget('pid')}${await inTarget('ipc')}${await inTarget('net')}1\n`);
  assert.notEqual(await ns('pid'), await inTarget('pid'));
  const host = await sh(['--pid', 'host', '--ipc', 'host', '--uts', 'host', '--network', 'host'], 'for k in pid ipc uts net; do readlink /proc/self/ns/$k; done; hostname');
  const mine = await Promise.all(['pid', 'ipc', 'uts', 'net'].map((k) => readlink(`/proc/self/ns/${k}`)));
  assert.equal(host, `${mine.join('\n')}\n${hostname()}\n`);
  await refused(['--network', 'host', '-p', '8080:80'], /conflicting options/);
  await refused(['--pid', 'bogus'], /invalid pid mode|--pid: invalid PID mode/);
  assert.equal((await docker(['rm', '-f', 'target'])).code, 0);
});

test('--volumes-from, --device, update --cpu-shares', async () => {
  const c = await docker(['run', '-d', '--name', 'vsrc', '-v', '/data', 'busybox', 'sh', '-c', 'echo shared > /data/f; sleep 1000']);
  assert.equal(c.code, 0, c.stderr);
  let out = '';
  for (let i = 0; i < 40 && out !== 'shared\n'; i++) out = (await docker(['run', '--rm', '--volumes-from', 'vsrc:ro', 'busybox', 'cat', '/data/f'])).stdout;
  assert.equal(out, 'shared\n');
  const ro = await docker(['run', '--rm', '--volumes-from', 'vsrc:ro', 'busybox', 'touch', '/data/g']);
  assert.match(ro.stderr, /Read-only file system/);
  assert.equal(await sh(['--device', '/dev/zero:/dev/myzero'], 'head -c 4 /dev/myzero | wc -c'), '4\n');
  await refused(['--device', '/etc/passwd'], /not a device/);
  const u = await docker(['update', '--cpu-shares', '512', 'vsrc']);
  assert.equal(u.code, 0, u.stderr);
  assert.equal((await docker(['inspect', '-f', '{{.HostConfig.CpuShares}}', 'vsrc'])).stdout, '512\n');
  const shares = Number((await docker(['exec', 'vsrc', 'cat', '/sys/fs/cgroup/cpu/cpu.shares'])).stdout);
  assert.ok(Math.abs(shares - 512) < 20, `cpu.shares ${shares}`);
  assert.equal((await docker(['rm', '-f', 'vsrc'])).code, 0);
});

test('--device-read-bps/--device-write-iops throttle a host block device in the container\'s blkio cgroup; weights are refused', async () => {
  // A loop device of the test's own, on a file of its own: throttled reads of it take at least their size / rate.
  const dir = await mkdtemp(join(tmpdir(), 'silo-test-blkio-'));
  const file = join(dir, 'disk.img');
  await writeFile(file, Buffer.alloc(4 << 20, 7));
  const dev = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
  try {
    const [maj, min] = readFileSync(`/sys/block/${dev.slice(5)}/dev`, 'utf8').trim().split(':');
    const out = await sh(['--device', dev, '--device-read-bps', `${dev}:1mb`, '--device-write-iops', `${dev}:50`],
      `cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device; s=$(date +%s); dd if=${dev} of=/dev/null bs=64k count=32 2>/dev/null; echo $(( $(date +%s) - s ))`);
    const [bps, iops, secs] = out.trim().split('\n');
    assert.deepEqual([bps, iops], [`${maj}:${min} 1048576`, `${maj}:${min} 50`]);
    // 2 MiB at 1 MiB/s: a bound below that a slow machine can only exceed.
    assert.ok(Number(secs) >= 1, `2 MiB read in ${secs} s at 1 MiB/s`);
  } finally {
    execFileSync('losetup', ['-d', dev]);
    await rm(dir, { recursive: true, force: true });
  }
  await refused(['--device-read-bps', '/dev/null:1mb'], /\/dev\/null is not a block device/);
  await refused(['--blkio-weight', '300'], /BlkioWeight is not supported by Silo: block I\/O weights are not supported/);
});

test('log drivers: none keeps no log, others are refused; --storage-opt size sets the scratch cap', async () => {
  await refused(['--log-driver', 'syslog'], /logging driver syslog is not supported/);
  await refused(['--log-opt', 'labels=a'], /log option labels is not supported/);
  await refused(['--log-opt', 'max-size=1x'], /invalid max-size '1x'/);
  await refused(['--log-driver', 'none', '--log-opt', 'max-size=1m'], /logging opts for driver none|driver none takes no options/);
  const n = await docker(['run', '-d', '--name', 'nolog', '--log-driver', 'none', 'busybox', 'echo', 'quiet']);
  assert.equal(n.code, 0, n.stderr);
  const l = await docker(['logs', 'nolog']);
  assert.notEqual(l.code, 0);
  assert.match(l.stderr, /keeps no log|does not support reading/);
  assert.equal((await docker(['rm', '-f', 'nolog'])).code, 0);
  const big = await docker(['run', '--rm', '--storage-opt', 'size=64m', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100 2>&1 | head -1']);
  assert.match(big.stdout + big.stderr, /No space left on device/);
  // The cap is the size asked, not some smaller one: 40 MiB fit.
  const fits = await docker(['run', '--rm', '--storage-opt', 'size=64m', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/fits bs=1M count=40 2>/dev/null && wc -c < /fits']);
  assert.equal(fits.code, 0, fits.stderr);
  assert.equal(fits.stdout.trim(), String(40 * 1024 * 1024));
  await refused(['--storage-opt', 'dm.basesize=1G'], /unknown storage option/);
});

test('every Docker body is checked against its schema: wrong JSON types are a 400, not a 201', async () => {
  const sock = `${fx.d.runDir}/docker.sock`;
  const post = (path: string, json: unknown) => request(sock, 'POST', `/v1.50${path}`, { json });
  for (const [body, re] of [
    [{ Image: 'busybox', Cmd: [1] }, /Cmd/],
    [{ Image: 'busybox', HostConfig: { Memory: -5 } }, /HostConfig\.Memory/],
    [{ Image: 5 }, /Image/],
    [{ Image: 'busybox', HostConfig: { Sysctls: { 'kernel.panic': '1' } } }, /sysctl kernel\.panic is not namespaced/],
    [{ Image: 'busybox', HostConfig: { BlkioWeight: 300 } }, /BlkioWeight is not supported/],
  ] as const) {
    const r = await post('/containers/create', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${r.body}`);
    assert.match(r.json.message, re);
  }
  const c = await post('/containers/create?name=typed', { Image: 'busybox', Cmd: ['true'] });
  assert.equal(c.status, 201);
  assert.equal((await post('/containers/typed/update', { Memory: 'lots' })).status, 400);
  assert.equal((await post('/containers/typed/exec', { Cmd: 'ls' })).status, 400);
  assert.equal((await post('/networks/create', { Name: 5 })).status, 400);
  assert.equal((await post('/volumes/create', { Labels: [] })).status, 400);
  const auth = await post('/auth', { username: 5, password: 'x' });
  assert.equal(auth.status, 400);
  assert.match(auth.json.message, /username/);
  assert.equal((await docker(['ps', '-aq'])).stdout.trim().split('\n').length, 1);
  assert.equal((await docker(['rm', '-f', 'typed'])).code, 0);
});
