import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarName, normalizeName } from '../../src/storage/reference.js';

const D = 'sha256:' + 'a'.repeat(64);

test('normalizeName: docker spellings', () => {
  const table: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:latest', 'docker.io/library/busybox:latest'],
    ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['foo/bar', 'docker.io/foo/bar:latest'],
    ['foo/bar:v1', 'docker.io/foo/bar:v1'],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['localhost/x:1.0', 'localhost/x:1.0'],
    ['quay.io/a/b/c:t_1', 'quay.io/a/b/c:t_1'],
    ['my-reg.example.com:443/team/app', 'my-reg.example.com:443/team/app:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`],
    ['a__b.c-d', 'docker.io/library/a__b.c-d:latest'],
  ];
  for (const [i, o] of table) assert.equal(normalizeName(i), o, i);
});

test('normalizeName: invalid references are InvalidArgument', () => {
  for (const bad of ['', 'Busybox', 'foo/Bar', 'a:', 'a:-x', 'a::b', '/x', 'x/', 'a//b', 'a@sha256:123', 'a b', '-a', 'a..b', `a:${'t'.repeat(129)}`, 'a@']) {
    assert.throws(() => normalizeName(bad), (e: any) => e.class === 'InvalidArgument', JSON.stringify(bad));
  }
});

test('familiarName: short display form', () => {
  assert.equal(familiarName('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.equal(familiarName('docker.io/foo/bar:v1'), 'foo/bar:v1');
  assert.equal(familiarName('localhost:5000/x:latest'), 'localhost:5000/x:latest');
  assert.equal(familiarName('docker.io/library/a/b:1'), 'library/a/b:1');
  assert.equal(familiarName(`docker.io/library/busybox@${D}`), `busybox@${D}`);
});
