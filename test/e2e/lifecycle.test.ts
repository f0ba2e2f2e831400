// The foundation, end to end, as a user drives it: the real daemon, CLI, runc, conmon, overlay and loop devices.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statfsSync } from 'node:fs';
import { TestDaemon, sleep } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

test('run --rm prints hello and leaves nothing behind', async () => {
  const r = await d.silo(['run', '--rm', 'busybox', 'echo', 'hello']);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.code, 0);
  const ps = await d.silo(['ps', '-aq']);
  assert.equal(ps.stdout.trim(), '');
});

test('exit codes: the container\'s, 127 for a missing command, 125 for a daemon error', async () => {
  assert.equal((await d.silo(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3'])).code, 3);
  const nf = await d.silo(['run', '--rm', 'busybox', 'no-such-command']);
  assert.equal(nf.code, 127, nf.stderr);
  assert.match(nf.stderr, /not found/);
  assert.equal(nf.stderr.trim().split('\n').length, 1);
  const bad = await d.silo(['run', '--rm', 'no-such-image:v9', 'true']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /no-such-image/);
});

test('/etc/hosts, resolv.conf and hostname are writable as under dockerd: the container\'s own copies, within its scratch cap; /etc/mtab is there', async () => {
  const w = await d.silo(['run', '--rm', '--hostname', 'h1', 'busybox', 'sh', '-c',
    'echo "10.9.9.9 extra" >> /etc/hosts && grep -c extra /etc/hosts && echo "options ndots:2" >> /etc/resolv.conf && tail -n 1 /etc/resolv.conf && cat /etc/hostname && echo h2 > /etc/hostname && cat /etc/hostname']);
  assert.equal(w.stdout, '1\noptions ndots:2\nh1\nh2\n', w.stderr);
  assert.equal(w.code, 0);
  // And /etc/mtab, as dockerd's init layer adds it (busybox has none), which is no change of the container's.
  const mtab = await d.silo(['run', '--name', 'mtab', 'busybox', 'sh', '-c', 'readlink /etc/mtab; grep -c " / overlay " /etc/mtab']);
  assert.equal(mtab.stdout, '/proc/mounts\n1\n', mtab.stderr);
  assert.equal((await d.silo(['diff', 'mtab'])).stdout, '');
  assert.equal((await d.silo(['rm', 'mtab'])).code, 0);
  // A read-only root keeps them read-only too.
  const ro = await d.silo(['run', '--rm', '--read-only', 'busybox', 'sh', '-c', 'echo x >> /etc/hosts']);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
  // With the host's network the container gets a copy of the host's files: the host's own stay as they were.
  const hostHosts = readFileSync('/etc/hosts', 'utf8');
  const hn = await d.silo(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'echo "10.9.9.8 silo-test-extra" >> /etc/hosts && grep -c silo-test-extra /etc/hosts']);
  assert.equal(hn.stdout, '1\n', hn.stderr);
  assert.equal(readFileSync('/etc/hosts', 'utf8'), hostHosts);
  // They live in the scratch: writing 100 MiB into /etc/hosts of a 64 MiB scratch stops at its cap.
  const big = await d.silo(['run', '--rm', '--storage-size', '64m', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/etc/hosts bs=1M count=100; ls -l /etc/hosts']);
  assert.match(big.stdout + big.stderr, /No space left on device/);
  const size = Number(/^\S+\s+\d+\s+\S+\s+\S+\s+(\d+)/m.exec(big.stdout)?.[1]);
  assert.ok(size < 64 * 1048576, big.stdout);
});

test('piped stdin reaches the container', async () => {
  const r = await d.silo(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'tr a-z A-Z; echo err >&2'], { input: 'piped words\n' });
  assert.equal(r.stdout, 'PIPED WORDS\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.code, 0);
});

test('detached container: limits, stats, top, inspect, exec, logs, stop within grace', async () => {
  const r = await d.silo(['run', '-d', '--name', 'w', '--hostname', 'wbox', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '50', 'busybox', 'sh', '-c', 'echo started; trap "exit 0" TERM; while true; do sleep 1; done']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^[0-9a-f]{64}$/);

  const insp = JSON.parse((await d.silo(['inspect', 'w'])).stdout)[0];
  assert.equal(insp.State, 'Running');
  assert.equal(insp.Document.Container.Memory.SizeInMB, 64);
  assert.equal(insp.Document.Container.Pids.Limit, 50);

  const stats = await d.silo(['stats', '--no-stream', '--format', 'json', 'w']);
  assert.equal(stats.code, 0, stats.stderr);
  const s = JSON.parse(stats.stdout);
  const st = Array.isArray(s) ? s[0] : s;
  assert.ok(JSON.stringify(st).includes('67108864'), `memory limit 64 MiB in stats: ${stats.stdout}`);

  const top = await d.silo(['top', 'w']);
  assert.match(top.stdout, /PID/);
  assert.match(top.stdout, /sleep|sh/);

  const host = await d.silo(['exec', 'w', 'hostname']);
  assert.equal(host.stdout, 'wbox\n');
  assert.equal((await d.silo(['exec', 'w', 'sh', '-c', 'exit 5'])).code, 5);

  await sleep(300);
  const logs = await d.silo(['logs', 'w']);
  assert.equal(logs.stdout, 'started\n');

  const t0 = Date.now();
  const stop = await d.silo(['stop', '-t', '3', 'w']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(Date.now() - t0 < 4000, 'stop within its grace period plus a second');
  const after = JSON.parse((await d.silo(['inspect', 'w'])).stdout)[0];
  assert.equal(after.State, 'Stopped');
  assert.equal((await d.silo(['rm', 'w'])).code, 0);
});

test('a process that ignores SIGTERM is killed after the grace period', async () => {
  await d.silo(['run', '-d', '--name', 'stubborn', 'busybox', 'sh', '-c', 'trap "" TERM; while true; do sleep 1; done']);
  const t0 = Date.now();
  assert.equal((await d.silo(['stop', '-t', '1', 'stubborn'])).code, 0);
  const dt = Date.now() - t0;
  assert.ok(dt >= 900 && dt < 2500, `stopped after ${dt} ms`);
  assert.equal((await d.silo(['wait', 'stubborn'])).stdout.trim(), '137');
  await d.silo(['rm', 'stubborn']);
});

test('memory limit: an allocation past --memory is killed', async () => {
  const r = await d.silo(['run', '--rm', '--memory', '32m', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/dev/null bs=64M count=1']);
  assert.equal(r.code, 137, r.stderr);
});

test('pids limit: a fork bomb hits --pids-limit', async () => {
  const script = 'for i in $(seq 40); do sleep 30 & done; echo all-forked';
  const r = await d.silo(['run', '--rm', '--pids-limit', '20', 'busybox', 'sh', '-c', script]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /can't fork|Resource temporarily unavailable/);
  assert.doesNotMatch(r.stdout, /all-forked/);
});

test('cpu limit: --cpus throttles a busy loop', async () => {
  await d.silo(['run', '-d', '--name', 'busy', '--cpus', '0.2', 'busybox', 'sh', '-c', 'while :; do :; done']);
  await sleep(1500);
  const stats = JSON.parse((await d.silo(['stats', '--no-stream', '--format', 'json', 'busy'])).stdout);
  const st = Array.isArray(stats) ? stats[0] : stats;
  const throttled = JSON.stringify(st).match(/"throttledPeriods":(\d+)/);
  assert.ok(throttled && Number(throttled[1]) > 0, `throttled periods in ${JSON.stringify(st)}`);
  await d.silo(['rm', '-f', 'busy']);
});

test('scratch cap: writing past --storage-size fails with ENOSPC and the host does not fill', async () => {
  const free0 = statfsSync('/var/lib').bavail;
  const r = await d.silo(['run', '--rm', '--storage-size', '64m', 'busybox', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1M', 'count=100']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /No space left on device/);
  const free1 = statfsSync('/var/lib').bavail;
  const bsize = statfsSync('/var/lib').bsize;
  const delta = (free0 - free1) * bsize;
  assert.ok(delta < 48 * 1024 * 1024, `host free space as before (${delta} bytes less)`);
  // A container that filled its scratch to the last block starts again: its /etc files, rewritten into the scratch
  // at each start, still fit (dockerd keeps them outside the root, so a full root never stops a start there).
  const fill = 'cat /etc/hostname; dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null; i=0; while echo x > /s$i; do i=$((i+1)); done 2>/dev/null; df -k / | tail -n 1';
  const full = await d.silo(['run', '--name', 'full', '--hostname', 'fullbox', '--storage-size', '64m', 'busybox', 'sh', '-c', fill]);
  assert.match(full.stdout, /^fullbox\n.* 0 +100% \/\n$/s, full.stderr);
  const again = await d.silo(['start', '-a', 'full']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^fullbox\n/, again.stderr);
  assert.equal((await d.silo(['rm', 'full'])).code, 0);
});

test('commit round trip: changes become a layer, deletions whiteouts', async () => {
  await d.silo(['run', '--name', 'src', 'busybox', 'sh', '-c', 'echo kept > /kept.txt && rm /bin/vi && mkdir -p /data && echo x > /data/x']);
  const c = await d.silo(['commit', 'src', 'snap:v1']);
  assert.equal(c.code, 0, c.stderr);
  const r = await d.silo(['run', '--rm', 'snap:v1', 'sh', '-c', 'cat /kept.txt /data/x; test -e /bin/vi && echo vi-present || echo vi-gone']);
  assert.equal(r.stdout, 'kept\nx\nvi-gone\n');
  const imgs = await d.silo(['images']);
  assert.match(imgs.stdout, /snap\s+v1/);
  await d.silo(['rm', 'src']);
  assert.equal((await d.silo(['rmi', 'snap:v1'])).code, 0);
});

test('--init: tini is PID 1 and the command runs under it', async () => {
  const r = await d.silo(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$']);
  assert.equal(r.code, 0, r.stderr);
  const [pid1, self] = r.stdout.trim().split('\n');
  assert.match(pid1, /^\/sbin\/docker-init -- sh -c/);
  assert.notEqual(self, '1');
});

test('restart, rename, attach and events from the silo CLI', async () => {
  const since = new Date().toISOString();
  const id = (await d.silo(['run', '-d', '--name', 'verbs1', 'busybox', 'sleep', '600'])).stdout.trim();
  const pid = async () => (await d.silo(['inspect', '--format', '{{.Pid}}', 'verbs1'])).stdout.trim();
  const before = await pid();
  const r = await d.silo(['restart', '-t', '1', 'verbs1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'verbs1\n');
  assert.notEqual(await pid(), before, 'a new init after the restart');
  assert.equal((await d.silo(['rename', 'verbs1', 'verbs2'])).code, 0);
  assert.equal((await d.silo(['inspect', '--format', '{{.Name}}', id])).stdout.trim(), 'verbs2');
  const taken = await d.silo(['rename', 'verbs2', 'verbs2']);
  assert.equal(taken.code, 125);
  // A stopped container is started by restart.
  assert.equal((await d.silo(['stop', '-t', '0', 'verbs2'])).code, 0);
  assert.equal((await d.silo(['restart', 'verbs2'])).code, 0);
  assert.equal((await d.silo(['inspect', '--format', '{{.State}}', 'verbs2'])).stdout.trim(), 'Running');

  // attach: the output from then on, and the container's exit code.
  assert.equal((await d.silo(['run', '-d', '--name', 'att1', 'busybox', 'sh', '-c', 'sleep 3; echo late; exit 5'])).code, 0);
  const att = await d.silo(['attach', '--no-stdin', 'att1'], { timeoutMs: 30_000 });
  assert.equal(att.code, 5, att.stderr);
  assert.equal(att.stdout, 'late\n');
  const stopped = await d.silo(['attach', 'att1']);
  assert.match(stopped.stderr, /^silo: You cannot attach to a stopped container, start it first\n$/);

  const ev = await d.silo(['events', '--since', since, '--until', new Date().toISOString(), '--filter', `container=${id.slice(0, 12)}`, '--filter', 'event=start', '--filter', 'event=rename']);
  assert.equal(ev.code, 0, ev.stderr);
  const lines = ev.stdout.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ').slice(1, 3).join(' ')), ['container start', 'container start', 'container rename', 'container start']);
  assert.match(lines[0], new RegExp(`^\\S+Z container start ${id} \\(.*name=verbs1`));
  // By name, the events that carried that name.
  const byName = await d.silo(['events', '--since', since, '--until', new Date().toISOString(), '--filter', 'container=verbs1', '--filter', 'type=container']);
  assert.ok(byName.stdout.trim().split('\n').every((l) => /name=verbs1/.test(l)), byName.stdout);
  const json = await d.silo(['events', '--since', '10m', '--until', '0', '--format', 'json']);
  assert.equal(json.code, 0, json.stderr);
  const bad = await d.silo(['events', '--filter', 'label=x']);
  assert.match(bad.stderr, /^silo: invalid --filter "label=x"/);
  for (const n of ['verbs2', 'att1']) await d.silo(['rm', '-f', n]);
});

test('silo diff, history and update', async () => {
  assert.equal((await d.silo(['run', '-d', '--name', 'upd1', '--memory', '64m', 'busybox', 'sh', '-c', 'echo x > /new; echo y >> /etc/group; sleep 600'])).code, 0);
  for (let i = 0; i < 50 && !(await d.silo(['diff', 'upd1'])).stdout.includes('A /new'); i++) await sleep(100);
  const diff = (await d.silo(['diff', 'upd1'])).stdout.split('\n');
  assert.ok(diff.includes('A /new') && diff.includes('C /etc/group'), diff.join('|'));

  const h = await d.silo(['history', 'busybox']);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT\n[0-9a-f]{12} /);
  assert.equal((await d.silo(['history', '-q', 'busybox'])).stdout.trim().split('\n').length, (JSON.parse((await d.silo(['history', '--format', 'json', 'busybox'])).stdout) as unknown[]).length);

  const cg = (f: string) => d.silo(['exec', 'upd1', 'cat', `/sys/fs/cgroup/${f}`]).then((r) => r.stdout.trim());
  const u = await d.silo(['update', '--memory', '96m', '--memory-reservation', '48m', '--cpus', '0.5', '--pids-limit', '40', '--restart', 'on-failure:2', 'upd1']);
  assert.equal(u.code, 0, u.stderr);
  assert.equal(u.stdout, 'upd1\n');
  assert.deepEqual([await cg('memory/memory.limit_in_bytes'), await cg('memory/memory.soft_limit_in_bytes'), await cg('cpu/cpu.cfs_quota_us'), await cg('pids/pids.max')], [String(96 << 20), String(48 << 20), '50000', '40']);
  const doc = JSON.parse((await d.silo(['inspect', 'upd1'])).stdout)[0].Document as { RestartPolicy?: { Name: string; MaximumRetryCount: number } };
  assert.deepEqual(doc.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
  const none = await d.silo(['update', 'upd1']);
  assert.match(none.stderr, /you must provide one or more flags/);
  const bad = await d.silo(['update', '--restart', 'sometimes', 'upd1']);
  assert.match(bad.stderr, /^silo: invalid restart policy "sometimes"/);
  await d.silo(['rm', '-f', 'upd1']);
});

test('named volumes from the silo CLI: run -v name:/path makes one filled from the image, kept across containers; in use for both doors', async () => {
  const r = await d.silo(['run', '--name', 'vol-writer', '-v', 'silovol:/etc', 'busybox', 'sh', '-c', 'grep -c root /etc/passwd; echo kept > /etc/mine']);
  assert.deepEqual([r.code, r.stdout], [0, '1\n'], r.stderr);
  const again = await d.silo(['run', '--rm', '-v', 'silovol:/data:ro', 'busybox', 'cat', '/data/mine']);
  assert.deepEqual([again.code, again.stdout], [0, 'kept\n'], again.stderr);
  const empty = await d.silo(['run', '--rm', '-v', 'silovol2:/etc:nocopy', 'busybox', 'sh', '-c', 'test ! -e /etc/passwd']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.deepEqual((await d.silo(['volume', 'ls', '-q'])).stdout.split('\n').sort(), ['', 'silovol', 'silovol2']);
  const info = JSON.parse((await d.silo(['volume', 'inspect', 'silovol'])).stdout) as { Name: string; Mountpoint: string; Containers: number }[];
  assert.deepEqual([info[0].Name, info[0].Containers], ['silovol', 1]);
  assert.equal((await d.silo(['volume', 'create', '-l', 'k=v', 'silovol3'])).stdout, 'silovol3\n');
  assert.equal((await d.silo(['volume', 'ls', '-q', '-f', 'label=k=v'])).stdout, 'silovol3\n');
  // The stopped writer still uses it: refused by the silo CLI and by the Docker door alike.
  const busy = await d.silo(['volume', 'rm', 'silovol']);
  assert.equal(busy.code, 125);
  assert.match(busy.stderr, /volume is in use - \[[0-9a-f]{64}\]/);
  const viaDocker = await request(`${d.runDir}/docker.sock`, 'DELETE', '/volumes/silovol');
  assert.equal(viaDocker.status, 409, viaDocker.body.toString());
  const bad = await d.silo(['run', '--rm', '-v', 'bad name:/x', 'busybox', 'true']);
  assert.match(bad.stderr, /a host path must be absolute, a volume name/);
  assert.equal((await d.silo(['volume', 'rm', 'nosuchvol'])).code, 125);
  assert.equal((await d.silo(['volume', 'rm', '-f', 'nosuchvol'])).code, 0);
  await d.silo(['rm', 'vol-writer']);
  const pruned = await d.silo(['volume', 'prune', '-a', '-f']);
  assert.match(pruned.stdout, /^Deleted Volumes:\n(silovol\d?\n){3}\nTotal reclaimed space: /);
  assert.equal((await d.silo(['volume', 'ls', '-q'])).stdout, '');
});

test('silo system df: what images, containers and volumes take, and what a prune would give back', async () => {
  const r = await d.silo(['run', '-d', '--name', 'dfw', '-v', 'dfvol:/data', 'busybox', 'sh', '-c', 'head -c 300000 /dev/zero > /f; head -c 100000 /dev/zero > /data/v; sleep 300']);
  assert.equal(r.code, 0, r.stderr);
  type Usage = { Images: { Names: string[]; Size: number; Containers: number }[]; Containers: { Name: string; SizeRw: number }[]; Volumes: { Name: string; Size: number; RefCount: number }[] };
  const u: Usage = { Images: [], Containers: [], Volumes: [] };
  for (let i = 0; i < 50; i++) {
    Object.assign(u, JSON.parse((await d.silo(['system', 'df', '--format', 'json'])).stdout));
    if (u.Containers.find((c) => c.Name === 'dfw')?.SizeRw === 300000 && u.Volumes.find((v) => v.Name === 'dfvol')?.Size === 100000) break;
    await sleep(100);
  }
  assert.equal(u.Containers.find((c) => c.Name === 'dfw')?.SizeRw, 300000);
  assert.deepEqual(u.Volumes.find((v) => v.Name === 'dfvol'), { Name: 'dfvol', Size: 100000, RefCount: 1 });
  const bb = u.Images.find((i) => i.Names.includes('docker.io/library/busybox:latest'))!;
  assert.equal(bb.Containers >= 1, true);
  // Its unpacked layer and its blobs: what it holds on disk, so an image in use frees nothing.
  const listed = JSON.parse((await request(d.socket, 'GET', '/v1/images')).body.toString()) as { names: string[]; size: number }[];
  assert.ok(bb.Size > listed.find((i) => i.names.includes('docker.io/library/busybox:latest'))!.size);
  const table = (await d.silo(['system', 'df'])).stdout.split('\n');
  assert.match(table[0], /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
  assert.match(table.find((l) => l.startsWith('Local Volumes'))!, /^Local Volumes\s+\d+\s+\d+\s+\S+\s+\S+/);
  const v = (await d.silo(['system', 'df', '-v'])).stdout;
  assert.match(v, /Containers space usage:[\s\S]*\s300kB\s+running\s+dfw/);
  assert.match(v, /Local Volumes space usage:[\s\S]*dfvol\s+1\s+100kB/);
  await d.silo(['rm', '-f', 'dfw']);
  await d.silo(['volume', 'rm', 'dfvol']);
});

test('silo ps --filter, --last and --latest', async () => {
  assert.equal((await d.silo(['run', '-d', '--name', 'pf1', '-l', 'tier=a', 'busybox', 'sleep', '300'])).code, 0);
  assert.equal((await d.silo(['run', '--name', 'pf2', 'busybox', 'sh', '-c', 'exit 4'])).code, 4);
  const ps = async (...a: string[]) => (await d.silo(['ps', '--format', '{{.Names}}', ...a])).stdout.trim().split('\n').filter(Boolean);
  assert.deepEqual(await ps('--filter', 'label=tier=a'), ['pf1']);
  assert.deepEqual(await ps('--filter', 'exited=4'), ['pf2']);
  assert.deepEqual(await ps('-a', '--filter', 'name=^pf', '--filter', 'status=running'), ['pf1']);
  assert.deepEqual(await ps('-l'), ['pf2']);
  assert.deepEqual(await ps('-n', '2'), ['pf2', 'pf1']);
  const bad = await d.silo(['ps', '--filter', 'colour=red']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /invalid filter 'colour'/);
  await d.silo(['rm', '-f', 'pf1', 'pf2']);
});
