// The native API refuses malformed requests with a 4xx and a one-line message before any service sees them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNativeApi } from '../../src/api/native/server.js';
import { EventBus } from '../../src/common/events.js';
import type { Services } from '../../src/host/services.js';
import { notFound, badState } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/log.js';

function app() {
  const calls: string[] = [];
  const compute = new Proxy({}, {
    get: (_t, name) => (...args: unknown[]) => {
      calls.push(String(name));
      if (name === 'get') throw notFound('container', String(args[0]));
      if (name === 'pause') throw badState('cannot pause container c: container is not running (state Stopped)');
      return Promise.resolve(undefined);
    },
  });
  const svc = { compute, storage: {}, events: new EventBus(), info: async () => ({}), version: () => ({}), log: silentLogger() } as unknown as Services;
  return { api: buildNativeApi(svc), calls };
}

test('create: schema violations are 400 and never reach the compute service', async () => {
  const { api, calls } = app();
  for (const body of [{}, { Image: 5 }, { Image: 'busybox', Bogus: 1 }, { Image: 'b', Document: { Container: { Memory: { SizeInMB: 'lots' } } } }, { Image: 'b', Document: { Process: { CommandArgs: 'ls' } } }]) {
    const r = await api.inject({ method: 'POST', url: '/v1/systems', payload: body });
    assert.equal(r.statusCode, 400, JSON.stringify(body));
    const msg = r.json().message as string;
    assert.ok(msg.length > 0 && !msg.includes('\n'));
  }
  const bad = await api.inject({ method: 'POST', url: '/v1/systems', headers: { 'content-type': 'application/json' }, payload: '{"Image":' });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(calls, []);
});

test('every body schema compiles (on its route\'s first request) and refuses an unknown field', async () => {
  const { api, calls } = app();
  const routes = ['/v1/systems', '/v1/systems/c/shutdown', '/v1/systems/c/signal', '/v1/systems/c/modify', '/v1/systems/c/rename', '/v1/systems/c/commit', '/v1/systems/c/processes',
    '/v1/images/i/tag', '/v1/networks', '/v1/endpoints/e/modify', '/v1/systems/c/networks', '/v1/loadbalancers', '/v1/loadbalancers/l/backends'];
  for (const url of routes) {
    for (let i = 0; i < 2; i++) {
      const r = await api.inject({ method: 'POST', url, payload: { Bogus: 1 } });
      assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
      assert.match(r.json().message, /^body/, url);
    }
  }
  assert.deepEqual(calls, []);
});

test('errors map to statuses: NotFound 404, wrong state 409, unknown route 404', async () => {
  const { api } = app();
  assert.equal((await api.inject({ method: 'GET', url: '/v1/systems/nope' })).statusCode, 404);
  const p = await api.inject({ method: 'POST', url: '/v1/systems/c/pause' });
  assert.equal(p.statusCode, 409);
  assert.match(p.json().message, /state Stopped/);
  assert.equal((await api.inject({ method: 'GET', url: '/v2/whatever' })).statusCode, 404);
  assert.equal((await api.inject({ method: 'GET', url: '/v1/systems/c/logs?tail=-3' })).statusCode, 400);
});
