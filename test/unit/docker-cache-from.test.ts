import assert from 'node:assert/strict';
import { test } from 'node:test';
import { begins, continuing, runCreatedBy } from '../../src/api/docker/build/cache-from.js';

const h = (created_by: string, empty = false) => ({ created: '2024-01-01T00:00:00Z', created_by, ...(empty ? { empty_layer: true } : {}) });
const base = { layers: ['sha256:a'], history: [h('base')] };
const src = { layers: ['sha256:a', 'sha256:b'], history: [h('base'), h('/bin/sh -c #(nop)  ENV X=1', true), h('/bin/sh -c echo hi')] };

test('cache-from: a source continues the image so far only when its layers and history begin with it', () => {
  assert.equal(begins(base, src), true);
  assert.equal(begins(src, base), false);
  assert.equal(begins({ layers: ['sha256:z'], history: base.history }, src), false, 'another layer');
  assert.equal(begins({ layers: base.layers, history: [{ ...h('base'), created: '2025-01-01T00:00:00Z' }] }, src), false, 'another history entry');
});

test('cache-from: the next step must be made by the same instruction, and have its layer', () => {
  assert.equal(continuing(base, [src], '/bin/sh -c #(nop)  ENV X=1'), src);
  assert.equal(continuing(base, [src], '/bin/sh -c #(nop)  ENV X=2'), undefined);
  const afterEnv = { layers: base.layers, history: src.history.slice(0, 2) };
  assert.equal(continuing(afterEnv, [src], '/bin/sh -c echo hi'), src);
  const layerless = { layers: ['sha256:a'], history: src.history };
  assert.equal(continuing(afterEnv, [layerless], '/bin/sh -c echo hi'), undefined, 'a layer step without its layer');
  assert.equal(continuing(src, [src], 'anything'), undefined, 'nothing after the source\'s last step');
});

test('RUN is recorded with its build arguments first, as docker writes it', () => {
  assert.equal(runCreatedBy(['/bin/sh', '-c', 'make'], {}), '/bin/sh -c make');
  assert.equal(runCreatedBy(['/bin/sh', '-c', 'make'], { A: '1', B: 'x y' }), '|2 A=1 B=x y /bin/sh -c make');
});
