// Crash safety: at each named fault point the daemon SIGKILLs itself mid-operation; the next daemon must finish or
// roll back what was interrupted, leaving a consistent state and nothing half-made.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FAULT_POINTS } from '../../src/common/fault.js';
import { TestDaemon, leaks } from './harness.js';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { finished, pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const d = new TestDaemon();
let tarFile: string;
let buildContext: string;
before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-test-fault-'));
  await writeFile(join(dir, 'hello.txt'), 'hello\n');
  tarFile = `${dir}.tar`;
  execFileSync('tar', ['-C', dir, '-cf', tarFile, '.']);
  await rm(dir, { recursive: true });
  // Two RUN steps, so a kill in the first leaves a step container (and maybe a committed step) behind.
  const ctx = await mkdtemp(join(tmpdir(), 'silo-test-fault-ctx-'));
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo one > /one && sleep 1\nRUN echo two > /two\n');
  buildContext = `${ctx}.tar`;
  execFileSync('tar', ['-C', ctx, '-cf', buildContext, '.']);
  await rm(ctx, { recursive: true });
  await d.start();
});
after(async () => {
  await rm(tarFile, { force: true });
  await rm(buildContext, { force: true });
  assert.deepEqual(await d.teardown(), []);
});

/** Published layers (chain ID hexes): what a storage fault must leave as it was before the interrupted operation. */
const layerDirs = async (): Promise<string[]> => (await readdir(join(d.stateDir, 'storage/layers'))).sort();
/** Stored blobs (digest hexes) likewise. */
const blobDirs = async (): Promise<string[]> => (await readdir(join(d.stateDir, 'storage/blobs/sha256'))).sort();

/** `docker save` / `docker load` through the Docker API socket (the CLI has no load). Resolves with the status. */
function dockerApi(method: 'GET' | 'POST', path: string, io: { out?: string; in?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(d.runDir, 'docker.sock'), method, path, headers: io.in ? { 'Content-Type': 'application/x-tar' } : {} }, (res) => {
      const sink = io.out ? createWriteStream(io.out) : undefined;
      (sink ? pipeline(res, sink) : (res.resume(), finished(res))).then(() => resolve(res.statusCode ?? 0), reject);
    });
    req.on('error', reject);
    if (io.in) createReadStream(io.in).pipe(req);
    else req.end();
  });
}

/** `ps -a --format json` prints one JSON object a line, as docker's. */
async function psAll(): Promise<{ ID: string; Names: string }[]> {
  const out = (await d.silo(['ps', '-a', '--format', 'json'])).stdout;
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** What must hold after every recovery: each listed system is whole, and nothing carries the tag without an owner. */
async function assertConsistent(): Promise<void> {
  const all = await psAll();
  for (const c of all) {
    const id = c.ID;
    const insp = JSON.parse((await d.silo(['inspect', id])).stdout)[0];
    assert.ok(insp.Document.Container.Networking?.Namespace, `system ${id} has its namespace`);
  }
  // The endpoint pool's namespaces and endpoints are the network service's, made ahead; every other object counts.
  const pooled = await d.pooled();
  const found = leaks(d.tag).filter((l) => !pooled(l));
  // Mounts, loops, cgroups and monitors of live systems carry their ids; nothing else may be there.
  assert.deepEqual(found.filter((l) => /^(mount|loop|cgroup|process)/.test(l) && !l.includes('/run/netns/') && !all.some((c) => l.includes(c.ID))), []);
  // One namespace and one endpoint per system (the `none` network is not used here), plus the default bridge.
  assert.equal(found.filter((l) => l.startsWith('netns')).length, all.length, found.join('\n'));
  assert.equal(found.filter((l) => l.startsWith('link') && l.includes(':ep:')).length, all.length, found.join('\n'));
  const networks = JSON.parse((await d.silo(['network', 'ls', '--format', 'json'])).stdout) as unknown[];
  assert.equal(found.filter((l) => l.startsWith('link') && l.includes(':br:')).length, networks.length, found.join('\n'));
}

// A pull's fault points need a registry: test/e2e/registry-faults.test.ts kills the daemon at them.
// A VM template's fault point is exercised by test/e2e/vm-isolation.test.ts.
for (const point of FAULT_POINTS.filter((p) => !p.startsWith('pull.') && !p.startsWith('vm.'))) {
  test(`killed at ${point}: the next daemon cleans up`, async () => {
    await d.stop();
    await d.start({ SILO_FAULT_POINTS: point });
    const name = `f-${point.replace(/\W+/g, '-')}`;
    const archive = `${tarFile}.${name}.docker.tar`;
    let layersBefore: string[] = [];
    let blobsBefore: string[] = [];
    let before: string[] = [];
    if (point.startsWith('create')) {
      await d.silo(['create', '--name', name, 'busybox', 'sleep', '300']);
    } else if (point.startsWith('start')) {
      await d.silo(['create', '--name', name, 'busybox', 'sleep', '300']);
      await d.silo(['start', name]);
    } else if (point.startsWith('remove')) {
      await d.silo(['run', '-d', '--name', name, 'busybox', 'sleep', '300']);
      await d.silo(['rm', '-f', name]);
    } else if (point.startsWith('import')) {
      layersBefore = await layerDirs();
      blobsBefore = await blobDirs();
      await d.silo(['import', tarFile, `${name}:v1`]);
    } else if (point.startsWith('commit')) {
      await d.silo(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'echo changed > /new; sleep 300']);
      layersBefore = await layerDirs();
      blobsBefore = await blobDirs();
      await d.silo(['commit', name, `${name}:v1`]);
    } else if (point.startsWith('load')) {
      // A docker-archive of an image whose layer the store then no longer has, so the load must publish it.
      layersBefore = await layerDirs();
      blobsBefore = await blobDirs();
      assert.equal((await d.silo(['import', tarFile, `${name}:v1`])).code, 0);
      assert.equal(await dockerApi('GET', `/images/get?names=${name}:v1`, { out: archive }), 200);
      assert.equal((await d.silo(['rmi', `${name}:v1`])).code, 0);
      assert.deepEqual(await layerDirs(), layersBefore);
      assert.deepEqual(await blobDirs(), blobsBefore);
      await dockerApi('POST', '/images/load', { in: archive }).catch(() => 0); // the daemon dies mid-answer
    } else if (point.startsWith('gc')) {
      // rmi of an image whose layer nothing else uses: the record goes, then the layer is collected.
      layersBefore = await layerDirs();
      blobsBefore = await blobDirs();
      assert.equal((await d.silo(['import', tarFile, `${name}:v1`])).code, 0);
      assert.notDeepEqual(await layerDirs(), layersBefore);
      await d.silo(['rmi', `${name}:v1`]);
    } else if (point.startsWith('build')) {
      before = (await psAll()).map((c) => c.ID);
      await dockerApi('POST', `/build?t=${name}:v1`, { in: buildContext }).catch(() => 0); // the daemon dies mid-build
    } else if (point.startsWith('network.remove')) {
      assert.equal((await d.silo(['network', 'create', name])).code, 0);
      await d.silo(['network', 'rm', name]);
    } else {
      await d.silo(['network', 'create', name]);
    }
    await d.exited();
    await d.start();
    await assertConsistent();
    if (point.startsWith('import')) {
      // The half-made layer was debris in ingest/, or published without its image record; either way removed at
      // start, and the import can simply be done again.
      assert.doesNotMatch((await d.silo(['images'])).stdout, new RegExp(name));
      assert.deepEqual(await readdir(join(d.stateDir, 'storage/ingest')), []);
      assert.deepEqual(await layerDirs(), layersBefore);
      assert.deepEqual(await blobDirs(), blobsBefore);
      assert.equal((await d.silo(['import', tarFile, `${name}:v1`])).code, 0);
      assert.equal((await d.silo(['rmi', `${name}:v1`])).code, 0);
      assert.deepEqual(await layerDirs(), layersBefore);
      assert.deepEqual(await blobDirs(), blobsBefore);
      return;
    }
    if (point.startsWith('commit') || point.startsWith('load') || point.startsWith('gc')) {
      // Killed with layers published but no image record (commit, load), or with the record gone but its layer not
      // yet collected (gc): the sweep at open removed the unreferenced layers and blobs, and nothing else.
      assert.doesNotMatch((await d.silo(['images'])).stdout, new RegExp(name));
      assert.deepEqual(await readdir(join(d.stateDir, 'storage/ingest')), []);
      assert.deepEqual(await readdir(join(d.stateDir, 'storage/blobs/ingest')), []);
      assert.deepEqual(await layerDirs(), layersBefore);
      assert.deepEqual(await blobDirs(), blobsBefore);
      if (point.startsWith('commit')) {
        const r = await d.silo(['commit', name, `${name}:v1`]); // the container was adopted: commit it again
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await d.silo(['rm', '-f', name])).code, 0);
      } else if (point.startsWith('load')) {
        assert.equal(await dockerApi('POST', '/images/load', { in: archive }), 200);
        await rm(archive, { force: true });
      } else {
        assert.equal((await d.silo(['import', tarFile, `${name}:v1`])).code, 0);
      }
      assert.match((await d.silo(['images'])).stdout, new RegExp(name));
      if (point.startsWith('commit')) {
        const r = await d.silo(['run', '--rm', `${name}:v1`, 'cat', '/new']); // the imported images have no cat
        assert.equal(r.stdout, 'changed\n', r.stderr);
      }
      assert.equal((await d.silo(['rmi', `${name}:v1`])).code, 0);
      assert.deepEqual(await layerDirs(), layersBefore);
      assert.deepEqual(await blobDirs(), blobsBefore);
      return;
    }
    if (point.startsWith('build')) {
      // The step container (created, maybe running) was the builder's, so it went at start; so did the context.
      // Steps committed before the kill are dangling images (cache at best); the tag was never applied.
      assert.deepEqual((await psAll()).map((c) => c.ID), before);
      assert.deepEqual(await readdir(join(d.stateDir, 'docker/build')).catch(() => []), []);
      assert.doesNotMatch((await d.silo(['images'])).stdout, new RegExp(name));
      const log = `${archive}.build.log`;
      assert.equal(await dockerApi('POST', `/build?t=${name}:v1`, { in: buildContext, out: log }), 200);
      const reply = await readFile(log, 'utf8');
      await rm(log, { force: true });
      assert.doesNotMatch(reply, /"error"/, reply);
      const r = await d.silo(['run', '--rm', `${name}:v1`, 'cat', '/one', '/two']);
      assert.equal(r.stdout, 'one\ntwo\n', r.stderr);
      assert.equal((await d.silo(['rmi', `${name}:v1`])).code, 0);
      await assertConsistent();
      return;
    }
    if (point.startsWith('network.remove')) {
      // The bridge went before the record: the next start brings the network up again whole, so it is usable and can
      // be removed once more — or, had the record gone too, it is fully gone. Never a record without its bridge.
      const nets = (await d.silo(['network', 'ls', '--format', 'json'])).stdout;
      if (nets.includes(name)) {
        const r = await d.silo(['run', '--rm', '--network', name, 'busybox', 'true']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await d.silo(['network', 'rm', name])).code, 0);
      }
      await assertConsistent();
      assert.doesNotMatch((await d.silo(['network', 'ls'])).stdout, new RegExp(name));
      return;
    }
    if (point.startsWith('network')) {
      // The record was written first, so the next daemon finishes the network: usable, then removable.
      const r = await d.silo(['run', '--rm', '--network', name, 'busybox', 'true']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await d.silo(['network', 'rm', name])).code, 0);
      await assertConsistent();
      return;
    }
    const names = (await psAll()).map((c) => c.Names);
    if (point.startsWith('create') || point.startsWith('remove')) assert.ok(!names.includes(name), `${name} rolled back: ${names}`);
    // The name is free again, or the system is usable: either way a fresh run works.
    await d.silo(['rm', '-f', name]);
    const r = await d.silo(['run', '--rm', '--name', name, 'busybox', 'echo', 'ok']);
    assert.equal(r.stdout, 'ok\n', r.stderr);
  });
}
