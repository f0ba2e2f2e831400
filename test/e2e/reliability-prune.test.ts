// Garbage: `silo image prune` removes dangling images nothing uses, `-a` every image no container uses (but the
// built-in busybox), each with the layers only it needed; `silo system prune` removes stopped containers first.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { TestDaemon } from './harness.js';
import { call, request } from './native-client.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

/** A one-file image with its own layer (the content makes the layer unique). */
async function importImage(content: string, name?: string): Promise<string> {
  const p = pack();
  p.entry({ name: 'f.txt' }, content.repeat(1000));
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  const a = await request(d.socket, 'POST', `/v1/images/import${name ? `?name=${encodeURIComponent(name)}` : ''}`, { body: Buffer.concat(chunks), headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(a.status, 201, a.body.toString());
  return a.json.id;
}

const imageIds = async () => new Set((await call<{ id: string }[]>(d.socket, 'GET', '/v1/images')).map((i) => i.id));
const layerCount = async () => (await call<unknown[]>(d.socket, 'GET', '/v1/layers')).length;
/** Blobs in the content store (each image has a config, a manifest and its layer tars). */
const blobCount = async () => (await readdir(join(d.stateDir, 'storage/blobs/sha256'))).length;

test('image prune: dangling and unused images go with their layers; used ones, named ones and busybox stay', async () => {
  const a = await importImage('a', 'p:a');
  const a2 = await importImage('a2', 'p:a'); // takes the name: a is dangling now
  const c = await importImage('c'); // dangling from the start
  const b = await importImage('b', 'p:b');
  const dd = await importImage('d', 'p:d');
  const e = await importImage('e'); // dangling but used by a container
  assert.equal((await d.silo(['create', '--name', 'uses-d', 'p:d', '/x'])).code, 0);
  assert.equal((await d.silo(['create', '--name', 'uses-e', e, '/x'])).code, 0);
  const busybox = (await call(d.socket, 'GET', '/v1/images/busybox')).id as string;
  const layers0 = await layerCount();
  const blobs0 = await blobCount();
  // docker system df counts the blobs with the layers.
  const df = await request(join(d.runDir, 'docker.sock'), 'GET', '/system/df');
  const layerBytes = (await call<{ size: number }[]>(d.socket, 'GET', '/v1/layers')).reduce((a, l) => a + l.size, 0);
  assert.ok(df.json.LayersSize > layerBytes, `${df.json.LayersSize} > ${layerBytes}`);

  // Without -f it asks; "n" (or no answer) changes nothing.
  const no = await d.silo(['image', 'prune'], { input: 'n\n' });
  assert.equal(no.code, 0, no.stderr);
  assert.match(no.stdout, /Are you sure/);
  assert.equal((await imageIds()).size, 7);

  const r = await d.silo(['image', 'prune', '-f']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`deleted: ${a}`));
  assert.match(r.stdout, /Total reclaimed space: [1-9]/);
  assert.deepEqual(await imageIds(), new Set([busybox, a2, b, dd, e]));
  assert.equal(await layerCount(), layers0 - 2);
  assert.equal(await blobCount(), blobs0 - 2 * 3);

  const all = await request(d.socket, 'POST', '/v1/images/prune?all=1');
  assert.equal(all.status, 200);
  assert.deepEqual(new Set(all.json.Deleted), new Set([a2, b]));
  assert.deepEqual(new Set(all.json.Untagged), new Set(['docker.io/library/p:a', 'docker.io/library/p:b']));
  assert.ok(all.json.SpaceReclaimed >= 2 * 1000, JSON.stringify(all.json));
  assert.equal(all.json.BlobsDeleted.length, 2 * 3);
  assert.deepEqual(await imageIds(), new Set([busybox, dd, e]));
  assert.equal(await blobCount(), 3 * 3);
  // Nothing left to prune: a second run deletes nothing and reclaims nothing.
  assert.deepEqual((await request(d.socket, 'POST', '/v1/images/prune?all=1')).json, { Deleted: [], Untagged: [], LayersDeleted: [], BlobsDeleted: [], SpaceReclaimed: 0 });
});

test('system prune: stopped containers, then the images they held; a committed image keeps its base layers', async () => {
  assert.equal((await d.silo(['run', '--name', 'base', 'busybox', 'sh', '-c', 'echo x > /made'])).code, 0);
  assert.equal((await d.silo(['commit', 'base', 'derived:1'])).code, 0);
  assert.equal((await d.silo(['run', '-d', '--name', 'live', 'busybox', 'sleep', '300'])).code, 0);
  const r = await d.silo(['system', 'prune', '-a', '-f']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Deleted Containers:/);
  const names = (await d.silo(['ps', '-a', '--format', '{{.Names}}'])).stdout.trim();
  assert.equal(names, 'live', 'only the running container is left');
  assert.deepEqual([...(await imageIds())].length, 1, 'only busybox is left');
  assert.equal(await layerCount(), 1, "busybox's layer stayed though derived:1 was built on it");
  assert.equal(await blobCount(), 3, "busybox's config, manifest and layer blobs, and nothing else");
  assert.equal((await d.silo(['exec', 'live', 'echo', 'ok'])).stdout, 'ok\n');
  assert.equal((await d.silo(['run', '--rm', 'busybox', 'echo', 'ok'])).stdout, 'ok\n');
  assert.equal((await d.silo(['doctor'])).code, 0);
});
