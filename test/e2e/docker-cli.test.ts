// The unmodified docker CLI against Silo's Docker API: the acceptance walk-through and docker's error texts.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture, randomPort } from './docker-fixture.js';

const fx = new DockerFixture();
const docker = (args: string[], o?: Parameters<DockerFixture['run']>[1]) => fx.run(args, o);
let ctx: string;

before(async () => {
  await fx.start();
  ctx = await mkdtemp(join(tmpdir(), 'silo-docker-'));
  await writeFile(join(ctx, 'index.html'), '<h1>hello from silo</h1>\n');
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY index.html /www/\nEXPOSE 80\nCMD ["httpd","-f","-p","80","-h","/www"]\n');
});

after(async () => {
  await rm(ctx, { recursive: true, force: true });
  const left = await fx.teardown();
  assert.deepEqual(left, []);
});

test('version and info talk to Silo at API 1.50', async () => {
  const v = await docker(['version', '--format', '{{.Server.APIVersion}} {{.Server.Os}}']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), '1.50 linux');
  const i = await docker(['info', '--format', '{{.OSType}} {{.Driver}}']);
  assert.equal(i.stdout.trim(), 'linux overlay2');
});

test('acceptance: build, run -d -p, curl, exec, logs, stop, rm', async () => {
  const b = await docker(['build', '-t', 'site', '.'], { cwd: ctx });
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /Step 1\/4 : FROM busybox\n ---> [0-9a-f]{12}\n/);
  assert.match(b.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged site:latest\n/);
  const again = await docker(['build', '-t', 'site', '.'], { cwd: ctx });
  assert.equal(again.code, 0);
  assert.equal(again.stdout.match(/ ---> Using cache/g)?.length, 3, again.stdout);

  const port = randomPort();
  const r = await docker(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, 'site']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
  let body = '';
  for (let i = 0; i < 50 && !body; i++) body = await fetch(`http://127.0.0.1:${port}/`).then((x) => x.text(), () => new Promise<string>((s) => setTimeout(() => s(''), 100)));
  assert.equal(body, '<h1>hello from silo</h1>\n');
  const ps = await docker(['ps', '--format', '{{.Names}} {{.Ports}} {{.Status}}']);
  assert.match(ps.stdout, new RegExp(`^web 127\\.0\\.0\\.1:${port}->80/tcp Up `));
  const e = await docker(['exec', 'web', 'cat', '/www/index.html']);
  assert.deepEqual([e.code, e.stdout], [0, '<h1>hello from silo</h1>\n']);
  const l = await docker(['logs', 'web']);
  assert.equal(l.code, 0);
  const s = await docker(['stop', '-t', '1', 'web']);
  assert.deepEqual([s.code, s.stdout], [0, 'web\n']);
  const rmv = await docker(['rm', 'web']);
  assert.deepEqual([rmv.code, rmv.stdout], [0, 'web\n']);
});

test('build steps reach roots only through the compute service: COPY --from (glob, symlink), --chown, ADD tar, WORKDIR', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-docker-ms-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), [
      'FROM busybox AS first',
      'WORKDIR /work/deep',
      'RUN echo one > a.txt && echo two > b.txt && echo no > c.log && ln -s /work/deep/a.txt /link && ln -s /work /wl',
      'FROM busybox',
      'COPY --from=first /work/deep/*.txt /out/',
      'COPY --from=first /link /linked',
      'COPY --from=0 /wl/deep/b.txt /via-dir-link',
      'COPY --chown=nobody:nogroup index.html /owned/',
      'ADD bundle.tar /unpacked/',
      'WORKDIR /made/by/workdir',
      'RUN pwd > /pwd',
    ].join('\n') + '\n');
    await writeFile(join(dir, 'index.html'), 'hi\n');
    const mk = await docker([`docker run --rm busybox sh -c 'mkdir -p /t/sub && echo inner > /t/sub/f && tar -C /t -cf - sub' > ${join(dir, 'bundle.tar')}`], { shell: true });
    assert.equal(mk.code, 0, mk.stderr);
    const b = await docker(['build', '-t', 'multistage', '.'], { cwd: dir });
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const r = await docker(['run', '--rm', 'multistage', 'sh', '-c', 'ls /out; cat /linked /via-dir-link /unpacked/sub/f /pwd; stat -c "%U:%G" /owned/index.html']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'a.txt\nb.txt\none\ntwo\ninner\n/made/by/workdir\nnobody:nogroup\n');
    // Nothing of the build's step containers is left.
    assert.equal((await docker(['ps', '-aq'])).stdout, '');
  } finally {
    await docker(['rmi', 'multistage']);
    await rm(dir, { recursive: true, force: true });
  }
});

test('docker save | docker load round-trips, keeping the image id and every layer digest', async () => {
  const ids = async () => (await docker(['inspect', '-f', '{{.Id}} {{json .RootFS.Layers}}', 'site', 'busybox'])).stdout;
  const before = await ids();
  const file = join(ctx, 'site.tar');
  assert.equal((await docker(['save', '-o', file, 'site', 'busybox'])).code, 0);
  // Removed first, so the load has to make the images again from the archive's blobs.
  const rmi = await docker(['rmi', 'site']);
  assert.equal(rmi.code, 0, rmi.stderr);
  const r = await docker([`docker load < ${file}`], { shell: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Loaded image: site:latest\nLoaded image: busybox:latest\n');
  assert.equal(await ids(), before);
  const again = await docker(['docker save site | docker load'], { shell: true });
  assert.equal(again.stdout, 'Loaded image: site:latest\n');
  assert.equal(await ids(), before);
  // The same archive as an OCI image layout alone (index.json, no manifest.json): the same ids again.
  const layout = join(ctx, 'layout');
  const repack = `mkdir ${layout} && tar -xf ${file} -C ${layout} && rm ${layout}/manifest.json ${layout}/repositories && tar -cf ${file} -C ${layout} . && rm -r ${layout}`;
  assert.equal((await fx.run([repack], { shell: true })).code, 0);
  assert.equal((await docker(['rmi', 'site'])).code, 0);
  const oci = await docker([`docker load < ${file}`], { shell: true });
  assert.equal(oci.code, 0, oci.stderr);
  assert.match(oci.stdout, /Loaded image: site:latest\n/);
  assert.equal(await ids(), before);
  const run = await docker(['run', '--rm', 'site', 'cat', '/www/index.html']);
  assert.deepEqual([run.code, run.stdout], [0, '<h1>hello from silo</h1>\n']);
});

test('run --rm -i with piped stdin, exit codes pass through', async () => {
  const r = await docker(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'tr a-z A-Z; exit 3'], { input: 'piped stdin\n' });
  assert.deepEqual([r.code, r.stdout], [3, 'PIPED STDIN\n']);
  const left = await docker(['ps', '-aq']);
  assert.equal(left.stdout, '');
});

test('run -it is interactive through a tty', async () => {
  const r = await fx.run([`printf 'echo tty-$((40+2))\\nexit 7\\n' | script -qefc 'docker run --rm -it busybox sh' /dev/null`], { shell: true });
  assert.match(r.stdout, /tty-42/);
  assert.equal(r.code, 7);
});

test('stats --no-stream, top, pause, inspect, cp both ways', async () => {
  assert.equal((await docker(['run', '-d', '--name', 'busy', 'busybox', 'sleep', '300'])).code, 0);
  const st = await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}} {{.MemUsage}}', 'busy']);
  assert.match(st.stdout, /^busy 1 \d/);
  const top = await docker(['top', 'busy']);
  assert.match(top.stdout, /sleep 300/);
  // The user's name comes from the container's own /etc/passwd, read inside its root while it runs.
  assert.match(top.stdout, /^root\s+\d+/m);
  assert.equal((await docker(['pause', 'busy'])).stdout, 'busy\n');
  assert.equal((await docker(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'busy'])).stdout, 'paused true\n');
  assert.equal((await docker(['unpause', 'busy'])).code, 0);
  const f = join(ctx, 'in.txt');
  await writeFile(f, 'copied in\n');
  assert.equal((await docker(['cp', f, 'busy:/tmp/'])).code, 0);
  assert.equal((await docker(['exec', 'busy', 'cat', '/tmp/in.txt'])).stdout, 'copied in\n');
  // A symlink to / inside the container must not lead the copy out of its root.
  await docker(['exec', 'busy', 'ln', '-s', '/', '/tmp/evil']);
  assert.equal((await docker(['cp', f, 'busy:/tmp/evil/'])).code, 0);
  assert.equal((await docker(['exec', 'busy', 'cat', '/in.txt'])).stdout, 'copied in\n');
  const out = join(ctx, 'passwd');
  assert.equal((await docker(['cp', 'busy:/etc/passwd', out])).code, 0);
  assert.match(await readFile(out, 'utf8'), /^root:x:0:0/);
  assert.equal((await docker(['rm', '-f', 'busy'])).code, 0);
});

test('errors as docker renders them', async () => {
  const nf = await docker(['inspect', 'nosuch']);
  assert.deepEqual([nf.code, nf.stderr.trim()], [1, 'Error: No such object: nosuch']);
  const st = await docker(['start', 'nosuch']);
  assert.equal(st.code, 1);
  assert.match(st.stderr, /Error response from daemon: No such container: nosuch/);
  assert.equal((await docker(['run', '-d', '--name', 'dup', 'busybox', 'sleep', '300'])).code, 0);
  const c = await docker(['run', '-d', '--name', 'dup', 'busybox', 'true']);
  assert.equal(c.code, 125);
  assert.match(c.stderr, /Conflict\. The container name "\/dup" is already in use by container "[0-9a-f]{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\./);
  const r = await docker(['rm', 'dup']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error response from daemon: cannot remove container "\/dup": container is running: stop the container before removing or force remove/);
  assert.equal((await docker(['rm', '-f', 'dup'])).stdout, 'dup\n');
  const img = await docker(['run', '--rm', 'nosuchimage']);
  assert.equal(img.code, 125);
  assert.match(img.stderr, /Unable to find image 'nosuchimage:latest' locally/);
  const iso = await docker(['run', '--rm', '--isolation=bogus', 'busybox', 'true']);
  assert.equal(iso.code, 125);
  assert.match(iso.stderr, /invalid isolation \(bogus\)/);
});

test('a new volume starts with what the image holds there (copy-up): files, owner, mode; nocopy and a volume with data are left as they are', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-copyup-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /srv/data/sub && echo seed > /srv/data/sub/f && chown -R 1234:5678 /srv/data && chmod 750 /srv/data\n');
    const b = await docker(['build', '-q', '-t', 'silo-test-copyup', dir]);
    assert.equal(b.code, 0, b.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const show = 'stat -c "%u:%g %a" /srv/data; cat /srv/data/sub/f; stat -c "%u:%g" /srv/data/sub/f';
  const r = await docker(['run', '--rm', '-v', 'cuvol:/srv/data', 'silo-test-copyup', 'sh', '-c', `${show}; echo mine > /srv/data/mine`]);
  assert.deepEqual([r.code, r.stdout], [0, '1234:5678 750\nseed\n1234:5678\n'], r.stderr);
  // Mounted again where the image has something else, it keeps its own data: docker copies into an empty volume only.
  const again = await docker(['run', '--rm', '-v', 'cuvol:/etc', 'busybox', 'sh', '-c', 'ls /etc/sub /etc/mine && ! test -e /etc/passwd']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  // An anonymous volume of the image's path is filled too; nocopy (either spelling) leaves a volume empty.
  const anon = await docker(['run', '--rm', '-v', '/srv/data', 'silo-test-copyup', 'cat', '/srv/data/sub/f']);
  assert.deepEqual([anon.code, anon.stdout], [0, 'seed\n'], anon.stderr);
  const none = await docker(['run', '--rm', '-v', 'cuvol2:/srv/data:nocopy', '--mount', 'type=volume,src=cuvol3,dst=/srv/more,volume-nocopy', 'silo-test-copyup', 'sh', '-c', 'ls -A /srv/data /srv/more | grep -v : | grep -c . || true']);
  assert.deepEqual([none.code, none.stdout], [0, '0\n'], none.stderr);
  const mode = await docker(['run', '--rm', '-v', 'cuvol:/x:rw,bogus', 'busybox', 'true']);
  assert.equal(mode.code, 125);
  assert.match(mode.stderr, /invalid volume specification: 'cuvol:\/x:rw,bogus': invalid mode: rw,bogus/);
  for (const v of ['cuvol', 'cuvol2', 'cuvol3']) assert.equal((await docker(['volume', 'rm', v])).code, 0);
  assert.equal((await docker(['rmi', 'silo-test-copyup'])).code, 0);
});

test('named volumes: create, use from two containers, in-use refusal, rm; anonymous ones go with --rm', async () => {
  assert.deepEqual((await docker(['volume', 'create', 'vol1'])).stdout, 'vol1\n');
  const w = await docker(['run', '--name', 'writer', '-v', 'vol1:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f']);
  assert.equal(w.code, 0, w.stderr);
  const r = await docker(['run', '--rm', '-v', 'vol1:/data:ro', 'busybox', 'cat', '/data/f']);
  assert.deepEqual([r.code, r.stdout], [0, 'kept\n']);
  assert.match((await docker(['volume', 'ls', '--format', '{{.Name}} {{.Driver}}'])).stdout, /^vol1 local$/m);
  const inUse = await docker(['volume', 'rm', 'vol1']);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /Error response from daemon: remove vol1: volume is in use - \[[0-9a-f]{64}\]/);
  const missing = await docker(['volume', 'inspect', 'nosuchvol']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no such volume/);
  const bad = await docker(['volume', 'create', 'bad/name']);
  assert.match(bad.stderr, /includes invalid characters for a local volume name/);
  assert.equal((await docker(['rm', 'writer'])).code, 0);
  assert.equal((await docker(['volume', 'rm', 'vol1'])).stdout, 'vol1\n');
  // An anonymous volume (-v /path) is removed with its --rm container.
  const before = (await docker(['volume', 'ls', '-q'])).stdout;
  assert.equal((await docker(['run', '--rm', '-v', '/anon', 'busybox', 'touch', '/anon/x'])).code, 0);
  // The door drops a removed container's anonymous volumes on the destroy event, just after the CLI saw it go.
  let now = '';
  for (let i = 0; i < 50 && (now = (await docker(['volume', 'ls', '-q'])).stdout) !== before; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(now, before);
});
