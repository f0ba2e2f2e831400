import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pruneFilter } from '../../src/api/docker/routes-containers.js';
import type { ComputeSystemRecord } from '../../src/compute/types.js';

const rec = (created: string, labels: Record<string, string> = {}) => ({ Created: created, Document: { Labels: labels } }) as unknown as ComputeSystemRecord;

test('containers prune filters: label, label!, until (unix seconds, RFC 3339, a duration ago); others refused', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  const old = rec('2026-01-01T00:00:00Z', { tier: 'a' });
  const fresh = rec('2026-01-01T23:59:00Z');
  const f = (o: Record<string, string[]>) => pruneFilter(new Map(Object.entries(o)), now);
  assert.equal(f({})(old), true);
  assert.equal(f({ label: ['tier=a'] })(old), true);
  assert.equal(f({ label: ['tier=a'] })(fresh), false);
  assert.equal(f({ 'label!': ['tier'] })(old), false);
  assert.equal(f({ 'label!': ['tier'] })(fresh), true);
  assert.equal(f({ until: ['1h'] })(old), true);
  assert.equal(f({ until: ['1h'] })(fresh), false);
  assert.equal(f({ until: [String(Date.parse('2026-01-01T12:00:00Z') / 1000)] })(old), true);
  assert.equal(f({ until: ['2026-01-01T12:00:00Z'] })(fresh), false);
  assert.throws(() => f({ until: ['yesterday'] }), /invalid value for until/);
  assert.throws(() => f({ status: ['exited'] }), /invalid filter 'status'/);
});
