import assert from 'node:assert/strict';
import { test } from 'node:test';
import { healthFromDocker, nextHealth, probeArgs, type HealthState } from '../../src/compute/health.js';
import { parseHealthcheck } from '../../src/storage/changes.js';

const entry = (code: number) => ({ Start: 't0', End: 't1', ExitCode: code, Output: '' });

test('health: healthy on success, unhealthy after the retries, start-period failures not counted', () => {
  let s: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };
  s = nextHealth(s, entry(1), 2, true);
  assert.deepEqual([s.Status, s.FailingStreak], ['starting', 0]);
  s = nextHealth(s, entry(1), 2, false);
  assert.deepEqual([s.Status, s.FailingStreak], ['starting', 1]);
  s = nextHealth(s, entry(1), 2, false);
  assert.deepEqual([s.Status, s.FailingStreak], ['unhealthy', 2]);
  s = nextHealth(s, entry(0), 2, false);
  assert.deepEqual([s.Status, s.FailingStreak], ['healthy', 0]);
  // Once healthy, a failure counts even inside the start period; the log keeps the last five.
  s = nextHealth(s, entry(1), 2, true);
  assert.equal(s.FailingStreak, 1);
  for (let i = 0; i < 6; i++) s = nextHealth(s, entry(0), 2, false);
  assert.equal(s.Log.length, 5);
});

test('health: probe commands and docker units', () => {
  assert.deepEqual(probeArgs({ Test: ['CMD', 'test', '-f', '/ok'] }), ['test', '-f', '/ok']);
  assert.deepEqual(probeArgs({ Test: ['CMD-SHELL', 'wget -qO- x || exit 1'] }), ['/bin/sh', '-c', 'wget -qO- x || exit 1']);
  assert.equal(probeArgs({ Test: ['NONE'] }), undefined);
  assert.deepEqual(healthFromDocker({ Test: ['CMD', 'true'], Interval: 500e6, Timeout: 0, Retries: 4 }), { Test: ['CMD', 'true'], IntervalMs: 500, Retries: 4 });
  assert.equal(healthFromDocker({ Test: [] }), undefined);
});

test('HEALTHCHECK instruction: options, exec and shell forms, NONE, bad input', () => {
  assert.deepEqual(parseHealthcheck('--interval=1m30s --timeout=500ms --retries=5 CMD ["curl", "-f", "x"]'), { Test: ['CMD', 'curl', '-f', 'x'], Interval: 90e9, Timeout: 500e6, Retries: 5 });
  assert.deepEqual(parseHealthcheck('CMD wget -q x || exit 1'), { Test: ['CMD-SHELL', 'wget -q x || exit 1'] });
  assert.deepEqual(parseHealthcheck('NONE'), { Test: ['NONE'] });
  assert.throws(() => parseHealthcheck('--interval=soon CMD true'), /not a duration/);
  assert.throws(() => parseHealthcheck('--bogus=1 CMD true'), /unknown option --bogus/);
  assert.throws(() => parseHealthcheck('true'), /needs CMD/);
});
