// Bind mounts and volumes of vm-isolated containers, shared into the guest by virtiofs (one virtiofsd per mount, the
// VM restored from its template onto a copy of its RAM mapped shared, the devices hot-added; with templates off a cold
// boot with shared RAM): read and written from the guest and seen on the host, read-only held by the host,
// a named volume through the Docker API, a daemon SIGKILL with the mount still working after, and nothing left after
// rm or a failed start (no virtiofsd, no socket, no lock file).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DockerFixture } from './docker-fixture.js';
import { leaks, sleep } from './harness.js';

const fx = new DockerFixture();
const d = fx.d;
// Under TCG on a loaded machine a cold boot can take a minute; the CLIs are given longer than the harness' 60 s.
const vm = (args: string[]) => d.silo(['run', '--isolation', 'vm', ...args], { timeoutMs: 300_000 });
const docker = (args: string[]) => fx.run(args, { timeoutMs: 300_000 });
const host = `/tmp/${d.tag}-binds`;

before(async () => {
  mkdirSync(`${host}/rw`, { recursive: true });
  mkdirSync(`${host}/ro`, { recursive: true });
  writeFileSync(`${host}/rw/in.txt`, 'from the host\n');
  writeFileSync(`${host}/ro/kept.txt`, 'read only\n');
  await fx.start();
});

after(async () => {
  rmSync(host, { recursive: true, force: true });
  assert.deepEqual(await fx.teardown(), []);
});

/** What virtiofs leaves when it is not cleaned up: processes, sockets in the VM run dirs, virtiofsd's lock files. */
function virtiofsLeft(): string[] {
  const out = leaks(d.tag).filter((l) => l.startsWith('process') && l.includes('virtiofsd'));
  const vmRun = `${d.runDir}/vm`;
  for (const dir of existsSync(vmRun) ? readdirSync(vmRun) : []) {
    for (const f of existsSync(`${vmRun}/${dir}`) ? readdirSync(`${vmRun}/${dir}`) : []) if (/^fs\d+\.sock$|^shares$/.test(f)) out.push(`socket: ${vmRun}/${dir}/${f}`);
  }
  const locks = '/var/run/virtiofsd';
  for (const f of existsSync(locks) ? readdirSync(locks) : []) if (f.includes(d.tag)) out.push(`lock: ${locks}/${f}`);
  for (const f of readdirSync('/dev/shm')) if (f.includes(d.tag)) out.push(`ram copy: /dev/shm/${f}`);
  return out;
}

/** What is left once a removal has had time to finish (an --rm removal ends after the CLI has its answer). */
async function leftAfterRm(): Promise<string[]> {
  for (let i = 0; i < 100 && virtiofsLeft().length; i++) await sleep(100);
  return virtiofsLeft();
}

test('a bind mount is read and written from the guest and seen on the host; a :ro one refuses writes, even remounted', async () => {
  const script = [
    'cat /data/in.txt',
    'echo from the guest > /data/out.txt && mkdir -p /data/sub && echo deep > /data/sub/f',
    'cat /ro/kept.txt',
    'echo no > /ro/nope 2>/dev/null; echo "ro write $?"',
    // Root in the guest may remount it read-write: the host's virtiofsd still sees a read-only tree.
    'mount -o remount,rw /ro; echo "remount $?"; echo no > /ro/nope2 2>/dev/null; echo "remounted write $?"',
    'grep -c virtiofs /proc/mounts',
  ].join('; ');
  const r = await vm(['--rm', '-v', `${host}/rw:/data`, '-v', `${host}/ro:/ro:ro`, 'busybox', 'sh', '-c', script]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'from the host\nread only\nro write 1\nremount 0\nremounted write 1\n2\n');
  assert.equal(readFileSync(`${host}/rw/out.txt`, 'utf8'), 'from the guest\n');
  assert.equal(readFileSync(`${host}/rw/sub/f`, 'utf8'), 'deep\n');
  assert.deepEqual(readdirSync(`${host}/ro`), ['kept.txt']);
  // Restored onto a copy of the template's RAM, its two devices hot-added.
  assert.match(d.logs, /up by template restore onto shared RAM .*ram copied \d+.*shares added \d+/);
  assert.deepEqual(await leftAfterRm(), []);
});

test('templates off: a cold boot with its RAM in a shared memfd and the devices from boot', async () => {
  await d.stop();
  await d.start({ SILO_VM_TEMPLATES: 'off' });
  const r = await vm(['--rm', '-v', `${host}/rw:/data`, '-v', `${host}/ro:/ro:ro`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo no > /ro/nope 2>/dev/null; echo "ro write $?"']);
  assert.equal(r.stdout, 'from the host\nro write 1\n', r.stderr);
  assert.match(d.logs, /up by cold boot with virtiofs/);
  assert.deepEqual(await leftAfterRm(), []);
  await d.stop();
  await d.start();
});

test('a named volume through the Docker API: written in a VM, read by a process container', async () => {
  assert.equal((await docker(['volume', 'create', `${d.tag}-vol`])).code, 0);
  const w = await docker(['run', '--rm', '--isolation=hyperv', '-v', `${d.tag}-vol:/vol`, 'busybox', 'sh', '-c', 'echo kept > /vol/f; cat /vol/f']);
  assert.equal(w.stdout, 'kept\n', w.stderr);
  const r = await docker(['run', '--rm', '-v', `${d.tag}-vol:/vol:ro`, 'busybox', 'cat', '/vol/f']);
  assert.equal(r.stdout, 'kept\n', r.stderr);
  assert.equal((await docker(['volume', 'rm', `${d.tag}-vol`])).code, 0);
  assert.deepEqual(await leftAfterRm(), []);
});

test('the mount keeps working across a daemon SIGKILL and restart, and after a stop and start; rm leaves nothing', async () => {
  const r = await vm(['-d', '--name', 'kept', '-v', `${host}/rw:/data`, 'busybox', 'sh', '-c', 'while true; do sleep 0.1; done']);
  assert.equal(r.code, 0, r.stderr);
  // While it runs: its virtiofsd, its socket and virtiofsd's lock file (what the checks after rm look for).
  const running = virtiofsLeft();
  for (const kind of ['process', 'socket', 'lock']) assert.ok(running.some((l) => l.startsWith(kind)), `${kind} while running: ${running.join(', ')}`);
  await d.kill();
  await d.start();
  assert.equal((await d.silo(['inspect', '--format', '{{.State}}', 'kept'])).stdout.trim(), 'Running');
  writeFileSync(`${host}/rw/late.txt`, 'written while no daemon ran\n');
  const ex = await d.silo(['exec', 'kept', 'sh', '-c', 'cat /data/late.txt; echo after the restart > /data/after.txt']);
  assert.equal(ex.stdout, 'written while no daemon ran\n', ex.stderr);
  assert.equal(readFileSync(`${host}/rw/after.txt`, 'utf8'), 'after the restart\n');
  // Its virtiofsd is in the VM's host cgroup and has an owner.
  const doc = await d.silo(['doctor']);
  assert.equal(doc.code, 0, doc.stdout + doc.stderr);
  // Stopped: its virtiofsd ended with its QEMU; started again: a new one serves the same directory.
  assert.equal((await d.silo(['stop', '-t', '1', 'kept'], { timeoutMs: 120_000 })).code, 0);
  for (let i = 0; i < 100 && leaks(d.tag).some((l) => l.includes('virtiofsd')); i++) await sleep(100);
  assert.deepEqual(leaks(d.tag).filter((l) => l.includes('virtiofsd')), []);
  assert.equal((await d.silo(['start', 'kept'], { timeoutMs: 300_000 })).code, 0);
  const again = await d.silo(['exec', 'kept', 'cat', '/data/after.txt']);
  assert.equal(again.stdout, 'after the restart\n', again.stderr);
  assert.equal((await d.silo(['rm', '-f', 'kept'])).code, 0);
  assert.deepEqual(await leftAfterRm(), []);
  assert.deepEqual(leaks(d.tag).filter((l) => l.includes('virtiofsd')), []);
});

test('a daemon killed after starting the virtiofsd, before QEMU: the next daemon takes them down, the container starts again', async () => {
  await d.stop();
  await d.start({ SILO_FAULT_POINTS: 'vm.shares.after-start' });
  const r = d.silo(['run', '-d', '--isolation', 'vm', '--name', 'half', '-v', `${host}/rw:/data`, 'busybox', 'sleep', '300'], { timeoutMs: 300_000 });
  await d.exited();
  await r;
  assert.ok(virtiofsLeft().some((l) => l.startsWith('process')), 'its virtiofsd outlived the daemon');
  await d.start();
  // The interrupted start was rolled back at restore: its virtiofsd, socket and lock file went with it.
  assert.deepEqual(await leftAfterRm(), []);
  assert.equal((await d.silo(['start', 'half'], { timeoutMs: 300_000 })).code, 0);
  assert.equal((await d.silo(['exec', 'half', 'cat', '/data/in.txt'])).stdout, 'from the host\n');
  assert.equal((await d.silo(['rm', '-f', 'half'])).code, 0);
  assert.deepEqual(await leftAfterRm(), []);
});

test('bad binds: a file is one line at create; a mount the guest cannot make fails the start and leaves nothing', async () => {
  const file = await vm(['--rm', '-v', `${host}/rw/in.txt:/in.txt`, 'busybox', 'true']);
  assert.notEqual(file.code, 0);
  assert.match(file.stderr.trim(), /^[^\n]*vm isolation shares directories only: \S+in\.txt is not a directory$/);
  // /bin/sh is a file in the image: the agent's virtiofs mount onto it fails after the virtiofsd started.
  const onFile = await vm(['--name', 'onfile', '-v', `${host}/rw:/bin/sh`, 'busybox', 'true']);
  assert.notEqual(onFile.code, 0);
  assert.match(onFile.stderr, /bind \/bin\/sh \(virtiofs m0\): Not a directory/);
  await d.silo(['rm', '-f', 'onfile']);
  assert.deepEqual(await leftAfterRm(), []);
  // A subpath that exists (a missing one is a 404 before any backend sees it).
  assert.equal((await docker(['run', '--rm', '-v', `${d.tag}-sub:/v`, 'busybox', 'mkdir', '/v/a'])).code, 0);
  const sub = await docker(['run', '--rm', '--isolation=hyperv', '--mount', `type=volume,src=${d.tag}-sub,dst=/v,volume-subpath=a`, 'busybox', 'true']);
  assert.notEqual(sub.code, 0);
  assert.match(sub.stderr, /vm isolation does not support volume subpaths yet/);
  await docker(['volume', 'rm', '-f', `${d.tag}-sub`]);
});
