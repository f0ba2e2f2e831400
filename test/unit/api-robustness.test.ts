// The native API under client mistakes found by the fuzz test (test/e2e/reliability-fuzz.test.ts): a malformed
// escape in an upgrade path is a 400, and a hijacked stream does not keep the server from closing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNativeApi } from '../../src/api/native/server.js';
import { decodeParam } from '../../src/api/native/routes-upgrade.js';
import { EventBus } from '../../src/common/events.js';
import type { Services } from '../../src/host/services.js';
import { silentLogger } from '../../src/common/log.js';

function serve() {
  const compute = {
    get: (id: string) => ({ Id: id, Init: { Tty: false, Stdin: false } }),
    // An attached session whose process never writes: only the client or the daemon's close ends it.
    attach: async () => ({ writeStdin() {}, closeStdin() {}, detach() {} }),
  };
  const svc = { compute, storage: {}, events: new EventBus(), info: async () => ({}), version: () => ({}), log: silentLogger() } as unknown as Services;
  const dir = mkdtempSync(join(tmpdir(), 'silo-unit-'));
  return { api: buildNativeApi(svc), path: join(dir, 'api.sock'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function exchange(path: string, text: string, keepOpen = false): Promise<{ head: string; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const s = connect(path);
    let got = '';
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.on('error', () => {});
    s.on('data', (b) => {
      got += b.toString();
      if (got.includes('\r\n\r\n')) resolve({ head: got, closed });
    });
    s.write(text);
    if (!keepOpen) s.end();
  });
}

test('decodeParam: a malformed escape is an InvalidArgument, a good one decodes', () => {
  assert.equal(decodeParam('a%2Fb'), 'a/b');
  assert.throws(() => decodeParam('%zz'), (e: Error & { class?: string }) => e.class === 'InvalidArgument');
});

test('upgrade with a malformed escape is a 400, not a 500', async () => {
  const { api, path, cleanup } = serve();
  await api.listen({ path });
  try {
    const { head } = await exchange(path, 'POST /v1/systems/%zz/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 /);
  } finally {
    await api.close();
    cleanup();
  }
});

test('close() ends hijacked streams instead of waiting on them forever', async () => {
  const { api, path, cleanup } = serve();
  await api.listen({ path });
  try {
    const { head, closed } = await exchange(path, 'POST /v1/systems/c/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n', true);
    assert.match(head, /^HTTP\/1\.1 101 /);
    const t = setTimeout(() => assert.fail('close() hung on the attached stream'), 3000);
    await api.close();
    await closed;
    clearTimeout(t);
  } finally {
    cleanup();
  }
});
