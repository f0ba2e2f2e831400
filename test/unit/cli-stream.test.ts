import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDemuxer } from '../../src/cli/stream.js';
import { frame } from './fake-daemon.js';

test('demux: whole frames in one chunk', () => {
  const got: [number, string][] = [];
  const d = createDemuxer((s, b) => got.push([s, b.toString()]));
  d.push(Buffer.concat([frame(1, 'out'), frame(2, 'err'), frame(1, '')]));
  assert.deepEqual(got, [
    [1, 'out'],
    [2, 'err'],
  ]);
  assert.equal(d.pending(), 0);
});

test('demux: every split point of a stream, including inside headers', () => {
  const all = Buffer.concat([frame(1, 'hello '), frame(2, 'oops\n'), frame(1, 'world\n'), frame(1, 'x'.repeat(300))]);
  for (let cut = 0; cut <= all.length; cut++) {
    for (const cut2 of [cut, Math.min(all.length, cut + 3), Math.min(all.length, cut + 9)]) {
      const out: string[] = [];
      const err: string[] = [];
      const d = createDemuxer((s, b) => (s === 2 ? err : out).push(b.toString()));
      d.push(all.subarray(0, cut));
      d.push(all.subarray(cut, cut2));
      d.push(all.subarray(cut2));
      assert.equal(out.join(''), `hello world\n${'x'.repeat(300)}`, `cut ${cut}/${cut2}`);
      assert.equal(err.join(''), 'oops\n');
      assert.equal(d.pending(), 0);
    }
  }
});

test('demux: byte by byte; an unfinished frame is held', () => {
  const got: string[] = [];
  const d = createDemuxer((_s, b) => got.push(b.toString()));
  const all = Buffer.concat([frame(1, 'abc'), frame(1, 'de')]);
  for (const byte of all.subarray(0, all.length - 1)) d.push(Buffer.from([byte]));
  assert.deepEqual(got, ['abc']);
  assert.equal(d.pending(), 9);
  d.push(all.subarray(all.length - 1));
  assert.deepEqual(got, ['abc', 'de']);
});

test('demux: frame data is not aliased to a reused chunk', () => {
  const got: Buffer[] = [];
  const d = createDemuxer((_s, b) => got.push(b));
  const f = frame(1, 'keep');
  const chunk = Buffer.from(f.subarray(0, 10));
  d.push(chunk);
  d.push(Buffer.from(f.subarray(10)));
  chunk.fill(0);
  assert.equal(Buffer.concat(got).toString(), 'keep');
});
