// A vm-isolated container's own guest kernel: another Debian kernel package, named with `silo run --vm-kernel` or the
// Docker label io.silo.vm.kernel, fetched with apt-get download and booted with an initramfs made for it, once per
// package; templates are kept per kernel. The other kernel is the newest cloud kernel this host's apt sources offer
// that is not the default guest kernel's release.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeOf, criClient } from './cri-client.js';
import { DockerFixture } from './docker-fixture.js';

const f = new DockerFixture();
const d = f.d;
before(() => f.start());
after(async () => assert.deepEqual(await f.teardown(), []));

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const defaultRelease = readFileSync(join(root, 'build/vm/vmlinux.version'), 'utf8').trim();

/** linux-image-<release>, the newest cloud flavour other than the default's (in version order of their releases). */
function otherKernel(): string {
  const names = execFileSync('apt-cache', ['search', '--names-only', '^linux-image-[0-9].*-cloud-amd64$'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => /^linux-image-[0-9].*-cloud-amd64$/.test(n) && n !== `linux-image-${defaultRelease}`);
  assert.ok(names.length, "no other cloud kernel package in this host's apt sources (apt-get update?)");
  return execFileSync('sort', ['-V'], { input: names.join('\n'), encoding: 'utf8' }).trim().split('\n').pop()!;
}
const PKG = otherKernel();
const RELEASE = PKG.slice('linux-image-'.length);

// Under TCG on a loaded machine a VM run (and the kernel's download and build) can take minutes.
const long = { timeoutMs: 300_000 };
const kernelsDir = () => `${d.stateDir}/vm/kernels`;

test('a daemon killed before a built kernel is renamed into place leaves a .tmp- dir the next start removes', async () => {
  await d.stop();
  await d.start({ SILO_FAULT_POINTS: 'vm.kernel.before-rename' });
  const r = await d.silo(['create', '--isolation', 'vm', '--vm-kernel', PKG, 'busybox', 'true'], long);
  assert.notEqual(r.code, 0);
  await d.exited();
  assert.ok(readdirSync(kernelsDir()).every((e) => e.startsWith('.tmp-')) && readdirSync(kernelsDir()).length === 1, 'killed mid-build');
  await f.start();
  assert.deepEqual(readdirSync(kernelsDir()), []);
  // The create never got as far as its record.
  assert.equal((await d.silo(['ps', '-aq'])).stdout, '');
});

test('uname -r in a VM with another kernel (Docker label, then the CLI flag) and in one with the default', async (t) => {
  const other = await f.run(['run', '--rm', '--isolation', 'hyperv', '--label', `io.silo.vm.kernel=${PKG}`, 'busybox', 'uname', '-r'], long);
  assert.equal(other.code, 0, other.stderr);
  assert.equal(other.stdout, `${RELEASE}\n`);
  const again = await d.silo(['run', '--rm', '--isolation', 'vm', '--vm-kernel', PKG, 'busybox', 'uname', '-r'], long);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `${RELEASE}\n`);
  // A bind mount goes through virtiofs, a module of that kernel in its initramfs (the VM cold-boots).
  const dir = mkdtempSync(join(tmpdir(), 'silo-test-kernel-'));
  try {
    writeFileSync(join(dir, 'f'), 'from the host\n');
    const bind = await d.silo(['run', '--rm', '--isolation', 'vm', '--vm-kernel', PKG, '-v', `${dir}:/data:ro`, 'busybox', 'sh', '-c', 'uname -r; cat /data/f'], long);
    assert.equal(bind.code, 0, bind.stderr);
    assert.equal(bind.stdout, `${RELEASE}\nfrom the host\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dflt = await d.silo(['run', '--rm', '--isolation', 'vm', 'busybox', 'uname', '-r'], long);
  assert.equal(dflt.code, 0, dflt.stderr);
  assert.equal(dflt.stdout, `${defaultRelease}\n`);
  assert.notEqual(RELEASE, defaultRelease);
  // Fetched and built once; the second run restored from that kernel's own template.
  assert.equal(d.logs.split('\n').filter((l) => l.includes(`guest kernel ${PKG} fetched`)).length, 1);
  assert.match(d.logs, new RegExp(`up by template restore \\([^)]*, ${PKG.replace(/[+.]/g, '\\$&')}\\)`));
  assert.deepEqual(readdirSync(kernelsDir()), [PKG]);
  const tpl = JSON.parse((await d.silo(['vm', 'template', 'ls', '--format', 'json'])).stdout) as { Kernel?: string }[];
  assert.deepEqual(tpl.map((x) => x.Kernel ?? 'default').sort(), ['default', PKG].sort());
  // A template of that kernel for another size, made ahead; a bad kernel there is one line too.
  const made = await d.silo(['vm', 'template', 'make', '-m', '100m', '--vm-kernel', PKG, '-q'], long);
  assert.equal(made.code, 0, made.stderr);
  const all = JSON.parse((await d.silo(['vm', 'template', 'ls', '--format', 'json'])).stdout) as { Key: string; MemoryMiB: number; Kernel?: string }[];
  assert.deepEqual(all.filter((x) => x.Key === made.stdout.trim()).map((x) => [x.MemoryMiB, x.Kernel]), [[192, PKG]]);
  const badMake = await d.silo(['vm', 'template', 'make', '--vm-kernel', 'linux-image-0.0.0-nosuch-amd64']);
  assert.match(badMake.stderr, /^[^\n]*no guest kernel package linux-image-0\.0\.0-nosuch-amd64[^\n]*\n$/);
  // What the kernel's fetch, its template and the runs cost here.
  for (const l of d.logs.split('\n').filter((x) => /vm: (guest kernel|template|\w+ up by)/.test(x))) t.diagnostic(/"msg":"([^"]*)"/.exec(l)?.[1] ?? l);
});

test('a vm pod names its guest kernel with the annotation io.silo.vm.kernel (the CRI); a process pod is refused', async () => {
  const c = criClient(`${d.runDir}/cri.sock`);
  const cfg = (name: string) => ({ metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 }, annotations: { 'io.silo.vm.kernel': PKG } });
  try {
    const proc = await codeOf(c.runtime.RunPodSandbox({ config: cfg('kproc'), runtime_handler: '' }));
    assert.match(proc.details, /^[^\n]*is for vm isolation only[^\n]*$/);
    const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: cfg('kvm'), runtime_handler: 'vm' });
    try {
      const { container_id: id } = await c.runtime.CreateContainer({
        pod_sandbox_id: pod,
        sandbox_config: cfg('kvm'),
        config: { metadata: { name: 'k', attempt: 0 }, image: { image: 'busybox' }, command: ['sleep', '600'] },
      });
      await c.runtime.StartContainer({ container_id: id });
      const r = await c.runtime.ExecSync({ container_id: id, cmd: ['uname', '-r'], timeout: 120 });
      assert.equal(r.stdout.toString(), `${RELEASE}\n`);
    } finally {
      await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
      await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
    }
  } finally {
    c.close();
  }
});

test('an unknown package, one that holds no kernel, or a kernel without vm isolation: one line, nothing made', async () => {
  const before = readdirSync(kernelsDir());
  const unknown = await d.silo(['run', '--rm', '--isolation', 'vm', '--vm-kernel', 'linux-image-0.0.0-nosuch-amd64', 'busybox', 'true'], long);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /^[^\n]*no guest kernel package linux-image-0\.0\.0-nosuch-amd64 in this host's apt sources[^\n]*\n$/);
  const meta = await f.run(['create', '--isolation', 'hyperv', '--label', 'io.silo.vm.kernel=linux-image-cloud-amd64', 'busybox', 'true'], long);
  assert.notEqual(meta.code, 0);
  assert.match(meta.stderr, /^[^\n]*package linux-image-cloud-amd64 holds no kernel \(it stands for linux-image-\S+: name that one\)\n$/);
  const proc = await d.silo(['run', '--rm', '--isolation', 'process', '--vm-kernel', PKG, 'busybox', 'true']);
  assert.notEqual(proc.code, 0);
  assert.match(proc.stderr, /^[^\n]*is for vm isolation only[^\n]*\n$/);
  const name = await d.silo(['create', '--isolation', 'vm', '--vm-kernel', 'bash', 'busybox', 'true']);
  assert.match(name.stderr, /^[^\n]*invalid guest kernel package "bash"[^\n]*\n$/);
  assert.equal((await d.silo(['ps', '-aq'])).stdout, '');
  assert.deepEqual(readdirSync(kernelsDir()), before, 'no package directory and no .tmp- debris');
});

test('silo vm kernel ls shows the kernel and who names it; rm refuses while a container does, -f removes it with its templates', async () => {
  const ctr = await d.silo(['create', '--isolation', 'vm', '--vm-kernel', PKG, '--name', 'silo-test-kuser', 'busybox', 'true'], long);
  assert.equal(ctr.code, 0, ctr.stderr);
  const ls = JSON.parse((await d.silo(['vm', 'kernel', 'ls', '--format', 'json'])).stdout) as { Package: string; Release: string; Containers: number; DiskBytes: number }[];
  assert.deepEqual(ls.map((k) => [k.Package, k.Release, k.Containers]), [[PKG, RELEASE, 1]]);
  assert.ok(ls[0].DiskBytes > 10 * 1048576, `${ls[0].DiskBytes} bytes: the kernel and its modules`);
  assert.match((await d.silo(['vm', 'kernel', 'ls'])).stdout, new RegExp(`^PACKAGE +RELEASE .*\\n${PKG.replace(/[+.]/g, '\\$&')} +${RELEASE.replace(/[+.]/g, '\\$&')} `));
  const fmt = await d.silo(['vm', 'kernel', 'ls', '--format', 'yaml']);
  assert.match(fmt.stderr, /^[^\n]*unsupported --format yaml[^\n]*\n$/);
  const refused = await d.silo(['vm', 'kernel', 'rm', PKG]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /^[^\n]*is named by 1 container\(s\), silo-test-kuser among them[^\n]*\n$/);
  assert.deepEqual(readdirSync(kernelsDir()), [PKG]);
  const forced = await d.silo(['vm', 'kernel', 'rm', '-f', PKG]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, `${PKG}\n`);
  assert.deepEqual(readdirSync(kernelsDir()), [], 'no package directory, no .tmp- debris');
  const tpl = JSON.parse((await d.silo(['vm', 'template', 'ls', '--format', 'json'])).stdout) as { Kernel?: string }[];
  assert.deepEqual(tpl.filter((x) => x.Kernel === PKG), [], "the kernel's templates went with it");
  const again = await d.silo(['vm', 'kernel', 'rm', PKG]);
  assert.match(again.stderr, /^[^\n]*no such guest kernel[^\n]*\n$/);
  assert.equal((await d.silo(['rm', 'silo-test-kuser'])).code, 0);
  assert.equal((await d.silo(['vm', 'kernel', 'ls', '-q'])).stdout, '');
});
