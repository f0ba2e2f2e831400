// silo events' pure parts: docker's time arguments, its filters, its line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventFilter, eventLine, parseTime } from '../../src/cli/commands/events.js';
import type { SiloEvent } from '../../src/common/events.js';

test('times: RFC 3339, Unix seconds, a duration ago; anything else is refused', () => {
  const now = Date.parse('2026-12-06T03:00:00Z');
  assert.equal(parseTime('2026-12-06T02:00:00Z', '--since', now), '2026-12-06T02:00:00.000Z');
  assert.equal(parseTime('1796000000', '--since', now), new Date(1796000000 * 1000).toISOString());
  assert.equal(parseTime('1h30m', '--since', now), '2026-12-06T01:30:00.000Z');
  assert.equal(parseTime('45s', '--until', now), '2026-12-06T02:59:15.000Z');
  assert.throws(() => parseTime('yesterday', '--since', now), /invalid --since "yesterday"/);
});

const ev = (o: Partial<SiloEvent>): SiloEvent => ({ Type: 'system', Action: 'start', Id: 'abcdef0123', Name: 'web', Attributes: { name: 'web', image: 'busybox' }, Time: '2026-12-06T02:00:00.000Z', TimeNano: 0, ...o });

test('filters: type, event and container (id prefix or name), each key any of its values', () => {
  assert.ok(eventFilter(['type=container'])(ev({})));
  assert.ok(!eventFilter(['type=image'])(ev({})));
  assert.ok(eventFilter(['event=die', 'event=start'])(ev({})));
  assert.ok(eventFilter(['container=abcd'])(ev({})) && eventFilter(['container=web'])(ev({})));
  assert.ok(!eventFilter(['container=web'])(ev({ Type: 'image' })));
  assert.throws(() => eventFilter(['label=a']), /invalid --filter "label=a"/);
});

test('a line as docker prints it', () => {
  assert.equal(eventLine(ev({})), '2026-12-06T02:00:00.000Z container start abcdef0123 (image=busybox, name=web)');
  assert.equal(eventLine(ev({ Type: 'daemon', Action: 'reload', Attributes: {} })), '2026-12-06T02:00:00.000Z daemon reload abcdef0123');
});
