import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { System } from '../../src/api/native/wire.js';
import { matcher, parseFilters, type Lookups } from '../../src/cli/commands/ps-filter.js';

const rec = (o: { Id: string; Name: string; State: System['State']; Created: string; ExitCode?: number; ImageId?: string; Labels?: Record<string, string>; Isolation?: 'process' | 'vm'; Endpoints?: string[]; Ports?: { InternalPort: number; Protocol: 'tcp' | 'udp'; ExternalPort: number }[]; Mapped?: { HostPath: string; ContainerPath: string }[] }) =>
  ({
    Id: o.Id, Name: o.Name, State: o.State, Created: o.Created, ExitCode: o.ExitCode, ImageId: o.ImageId ?? 'sha256:aa', ImageName: 'busybox',
    Document: { Isolation: o.Isolation ?? 'process', Labels: o.Labels, Container: { Networking: { Endpoints: o.Endpoints ?? [], PortMappings: o.Ports }, MappedDirectories: o.Mapped } },
  }) as unknown as System;

const a = rec({ Id: 'aaa1', Name: 'web', State: 'Running', Created: '2026-01-01T00:00:00Z', Labels: { tier: 'front' }, Endpoints: ['ep1'], Ports: [{ InternalPort: 80, Protocol: 'tcp', ExternalPort: 8080 }] });
const b = rec({ Id: 'bbb2', Name: 'db', State: 'Stopped', ExitCode: 3, Created: '2026-01-02T00:00:00Z', ImageId: 'sha256:bb', Mapped: [{ HostPath: '/var/lib/silo/volumes/data/_data', ContainerPath: '/data' }] });
const c = rec({ Id: 'ccc3', Name: 'vmjob', State: 'Created', Created: '2026-01-03T00:00:00Z', Isolation: 'vm' });
const all = [a, b, c];
const l: Lookups = { endpointNetworks: new Map([['ep1', { id: 'net123', name: 'front' }]]), volumePaths: new Map([['data', '/var/lib/silo/volumes/data/_data']]), imageIds: new Map([['busybox:2', 'sha256:bb']]) };
const names = (...f: string[]) => all.filter(matcher(parseFilters(f), all, l)).map((r) => r.Name);

test('silo ps filters: each key as docker ps applies it', () => {
  assert.deepEqual(names(), ['web', 'db', 'vmjob']);
  assert.deepEqual(names('id=bbb'), ['db']);
  assert.deepEqual(names('name=^w'), ['web']);
  assert.deepEqual(names('label=tier'), ['web']);
  assert.deepEqual(names('label=tier=back'), []);
  assert.deepEqual(names('status=exited'), ['db']);
  assert.deepEqual(names('status=created', 'status=running'), ['web', 'vmjob']);
  assert.deepEqual(names('exited=3'), ['db']);
  assert.deepEqual(names('ancestor=busybox:2'), ['db']);
  assert.deepEqual(names('before=db'), ['web']);
  assert.deepEqual(names('since=web'), ['db', 'vmjob']);
  assert.deepEqual(names('isolation=hyperv'), ['vmjob']);
  assert.deepEqual(names('isolation=default'), ['web', 'db']);
  assert.deepEqual(names('network=front'), ['web']);
  assert.deepEqual(names('network=net1'), ['web']);
  assert.deepEqual(names('volume=data'), ['db']);
  assert.deepEqual(names('volume=/data'), ['db']);
  assert.deepEqual(names('publish=80'), ['web']);
  assert.deepEqual(names('publish=70-90/tcp'), ['web']);
  assert.deepEqual(names('publish=80/udp'), []);
});

test('silo ps filters: a key or value docker ps refuses is refused', () => {
  assert.throws(() => parseFilters(['colour=red']), /invalid filter 'colour'/);
  assert.throws(() => parseFilters(['nokey']), /invalid filter 'nokey'/);
  assert.throws(() => parseFilters(['status=sleeping']), /invalid filter 'status=sleeping'/);
  assert.throws(() => parseFilters(['exited=x']), /invalid filter 'exited=x'/);
  assert.throws(() => parseFilters(['publish=http']), /invalid filter 'publish=http'/);
  assert.throws(() => parseFilters(['name=(']), /not a regular expression/);
  assert.throws(() => matcher(parseFilters(['before=nosuch']), all, l), /No such container: nosuch/);
});
