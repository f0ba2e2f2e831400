import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLink, linkEnv, parseLink } from '../../src/api/docker/links.js';

test('link specs and docker\'s link variables', () => {
  assert.deepEqual(parseLink('db'), { ref: 'db', alias: 'db' });
  assert.deepEqual(parseLink('/redis-1:/web/cache'), { ref: 'redis-1', alias: 'cache' });
  assert.throws(() => parseLink(':x'), /invalid link/);
  const target = { name: 'redis-1', ip: '10.0.0.5', env: ['PATH=/bin', 'HOME=/root', 'PASS=a=b', 'BARE'], exposed: ['6379/tcp', '53/udp'], running: true };
  assert.deepEqual(linkEnv({ target, alias: 'my-cache' }, 'web'), [
    'MY_CACHE_PORT=udp://10.0.0.5:53',
    'MY_CACHE_PORT_53_UDP=udp://10.0.0.5:53', 'MY_CACHE_PORT_53_UDP_ADDR=10.0.0.5', 'MY_CACHE_PORT_53_UDP_PORT=53', 'MY_CACHE_PORT_53_UDP_PROTO=udp',
    'MY_CACHE_PORT_6379_TCP=tcp://10.0.0.5:6379', 'MY_CACHE_PORT_6379_TCP_ADDR=10.0.0.5', 'MY_CACHE_PORT_6379_TCP_PORT=6379', 'MY_CACHE_PORT_6379_TCP_PROTO=tcp',
    'MY_CACHE_NAME=/web/my-cache',
    'MY_CACHE_ENV_PASS=a=b',
  ]);
  assert.throws(() => checkLink({ target: { ...target, running: false }, alias: 'c' }, 'web'), /Cannot link to a non running container: \/redis-1 AS \/web\/c/);
  assert.throws(() => checkLink({ target: { ...target, ip: undefined }, alias: 'c' }, 'web'), /does not belong to the network/);
});
