// Host ports for ExternalPort 0: picked from the ephemeral range, never one mapped already or held by a host socket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { assignHostPorts } from '../../src/network/hostports.js';
import type { Ctx } from '../../src/network/context.js';
import type { EndpointPolicy } from '../../src/network/types.js';

const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
const pm = (ExternalPort: number, InternalPort = 80, Protocol: 'tcp' | 'udp' = 'tcp'): EndpointPolicy => ({ Type: 'PortMapping', Settings: { Protocol, InternalPort, ExternalPort } });
const ctxWith = (mapped: number[], cursor = 0) =>
  ({
    endpoints: new Map([['e1', { Id: 'e1', Policies: mapped.map((p) => pm(p)) }]]),
    lbs: new Map(),
    hostPortCursor: cursor,
  }) as unknown as Ctx;
const ext = (ps: EndpointPolicy[]) => ps.map((p) => (p.Type === 'PortMapping' ? p.Settings.ExternalPort : -1));

test('zeros get distinct free ports in the range; given ports are kept', async () => {
  const ctx = ctxWith([lo, lo + 1]);
  const out = ext(await assignHostPorts(ctx, [pm(0), pm(8080, 81), pm(0, 82)]));
  assert.equal(out[1], 8080);
  for (const p of [out[0], out[2]]) assert.ok(p >= lo + 2 && p <= hi, String(p));
  assert.notEqual(out[0], out[2]);
  // The cursor moved on: the next pick is after the last one.
  const next = ext(await assignHostPorts(ctx, [pm(0)]))[0];
  assert.ok(next > out[2], `${next} after ${out[2]}`);
  // Nothing to pick: the same array back.
  const fixed = [pm(9000)];
  assert.equal(await assignHostPorts(ctx, fixed), fixed);
});

test('a port a host socket listens on is skipped', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const held = (srv.address() as { port: number }).port;
  try {
    if (held < lo || held > hi) return; // the kernel gave a port outside the range: nothing to check
    const got = ext(await assignHostPorts(ctxWith([], held - lo), [pm(0)]))[0];
    assert.notEqual(got, held);
  } finally {
    srv.close();
  }
});

test('a full range is a clear error', async () => {
  const all = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  await assert.rejects(assignHostPorts(ctxWith(all), [pm(0)]), /no free host port for tcp/);
});
