import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ago,
  bytesSize,
  cpuTime,
  displayName,
  ellipsis,
  humanDuration,
  humanSize,
  outputFormat,
  percent,
  renderTemplate,
  splitRepoTag,
  statusOf,
  table,
} from '../../src/cli/format.js';
import { startFailureCode, describe as describeError, CliError, DaemonError } from '../../src/cli/errors.js';
import { parseSince } from '../../src/cli/commands/logs.js';
import { statsRow } from '../../src/cli/commands/stats.js';

test('table: columns padded by 3 (min width 10), last column unpadded', () => {
  const t = table(
    ['CONTAINER ID', 'IMAGE', 'NAMES'],
    [
      ['0123456789ab', 'busybox', 'web'],
      ['ba9876543210', 'a-much-longer-image', 'db'],
    ],
  );
  assert.equal(
    t,
    [
      'CONTAINER ID   IMAGE                 NAMES',
      '0123456789ab   busybox               web',
      'ba9876543210   a-much-longer-image   db',
    ].join('\n'),
  );
  assert.equal(table(['A', 'B'], [['x', 'y']]), 'A         B\nx         y');
  assert.equal(table(['A', 'B'], []), 'A         B');
});

test('humanSize: decimal, 3 significant digits, like docker images', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(4_261_000), '4.26MB');
  assert.equal(humanSize(1_234_567_890), '1.23GB');
  assert.equal(humanSize(999_900), '1MB');
  assert.equal(humanSize(12_345), '12.3kB');
});

test('bytesSize: binary, 4 significant digits, like docker stats', () => {
  assert.equal(bytesSize(0), '0B');
  assert.equal(bytesSize(1536), '1.5KiB');
  assert.equal(bytesSize(64 * 1024 * 1024), '64MiB');
  assert.equal(bytesSize(1_593_835), '1.52MiB');
  assert.equal(bytesSize(8 * 1024 ** 3), '8GiB');
});

test('humanDuration follows go-units', () => {
  const s = 1000;
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1 * s), '1 second');
  assert.equal(humanDuration(5 * s), '5 seconds');
  assert.equal(humanDuration(59 * s), '59 seconds');
  assert.equal(humanDuration(60 * s), 'About a minute');
  assert.equal(humanDuration(2 * 60 * s), '2 minutes');
  assert.equal(humanDuration(59 * 60 * s), '59 minutes');
  assert.equal(humanDuration(60 * 60 * s), 'About an hour');
  assert.equal(humanDuration(3 * 3600 * s), '3 hours');
  assert.equal(humanDuration(3 * 86400 * s), '3 days');
  assert.equal(humanDuration(21 * 86400 * s), '3 weeks');
  assert.equal(humanDuration(90 * 86400 * s), '3 months');
  assert.equal(humanDuration(3 * 365 * 86400 * s), '3 years');
  const now = Date.parse('2024-01-01T00:02:00Z');
  assert.equal(ago('2024-01-01T00:00:00Z', now), '2 minutes ago');
});

test('statusOf: Created, Up, Paused, Exited', () => {
  const now = Date.parse('2024-01-01T00:10:00Z');
  assert.equal(statusOf({ State: 'Created' }, now), 'Created');
  assert.equal(statusOf({ State: 'Running', StartedAt: '2024-01-01T00:09:55Z' }, now), 'Up 5 seconds');
  assert.equal(statusOf({ State: 'Paused', StartedAt: '2024-01-01T00:07:00Z' }, now), 'Up 3 minutes (Paused)');
  assert.equal(
    statusOf({ State: 'Stopped', StartedAt: '2024-01-01T00:00:00Z', FinishedAt: '2024-01-01T00:08:00Z', ExitCode: 0 }, now),
    'Exited (0) 2 minutes ago',
  );
  assert.equal(statusOf({ State: 'Stopped', StartedAt: '2024-01-01T00:00:00Z', ExitCode: 137 }, now), 'Exited (137)');
});

test('names, ellipsis, cpu time, percent', () => {
  assert.equal(displayName('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.equal(displayName('docker.io/me/app:1'), 'me/app:1');
  assert.deepEqual(splitRepoTag('docker.io/library/busybox:latest'), ['busybox', 'latest']);
  assert.deepEqual(splitRepoTag('localhost:5000/app'), ['localhost:5000/app', 'latest']);
  assert.deepEqual(splitRepoTag('localhost:5000/app:v2'), ['localhost:5000/app', 'v2']);
  assert.equal(ellipsis('sh -c while true; do sleep 1; done', 20), 'sh -c while true; d…');
  assert.equal(ellipsis('short', 20), 'short');
  assert.equal(cpuTime(0), '0:00');
  assert.equal(cpuTime(65e9), '1:05');
  assert.equal(cpuTime(3723e9), '1:02:03');
  assert.equal(percent(12.345), '12.35%');
  assert.equal(percent(NaN), '0.00%');
});

test('templates and --format', () => {
  const o = { ID: 'abc', State: { Status: 'running' }, Labels: { a: '1' } };
  assert.equal(renderTemplate('{{.ID}}\\t{{.State.Status}}', o), 'abc\trunning');
  assert.equal(renderTemplate('{{json .Labels}}', o), '{"a":"1"}');
  assert.equal(renderTemplate('{{ .Missing }}', o), '<no value>');
  assert.deepEqual(outputFormat(undefined), { kind: 'table' });
  assert.deepEqual(outputFormat('json'), { kind: 'json' });
  assert.deepEqual(outputFormat('{{.ID}}'), { kind: 'template', tpl: '{{.ID}}' });
});

test('exit codes of start failures and error lines', () => {
  assert.equal(startFailureCode('exec: "nope": executable file not found in $PATH'), 127);
  assert.equal(startFailureCode('exec /bin/x: no such file or directory'), 127);
  assert.equal(startFailureCode('exec /etc: permission denied'), 126);
  assert.equal(startFailureCode('No such image: foo'), 125);
  assert.deepEqual(describeError(new DaemonError('no such system: x', 404)), { line: 'Error response from daemon: no such system: x', code: 125 });
  assert.deepEqual(describeError(new CliError('bad\nthing')), { line: 'silo: bad; thing', code: 125 });
});

test('logs --since: durations, unix times, RFC3339', () => {
  const now = Date.parse('2024-01-01T01:00:00Z');
  assert.equal(parseSince('10m', now), '2024-01-01T00:50:00.000Z');
  assert.equal(parseSince('1h30m', now), '2023-12-31T23:30:00.000Z');
  assert.equal(parseSince('1704067200'), '2024-01-01T00:00:00.000Z');
  assert.equal(parseSince('2024-01-01T00:00:00Z'), '2024-01-01T00:00:00Z');
  assert.throws(() => parseSince('yesterday'), CliError);
});

test('stats row: CPU % from two samples over wall time, memory against the limit, network received / sent', () => {
  const rec = { Id: 'a'.repeat(64), Name: 'w' } as never;
  const mk = (ts: string, cpuNs: number) => ({
    rec,
    at: Date.parse(ts),
    stats: {
      timestamp: ts,
      cpu: { totalNs: cpuNs, userNs: 0, kernelNs: 0, throttledPeriods: 0, throttledNs: 0 },
      memory: { usageBytes: 16 * 1024 * 1024, peakBytes: 0, limitBytes: 64 * 1024 * 1024, failCount: 0 },
      pids: { current: 3, limit: 50 },
      io: { readBytes: 1_500_000, writeBytes: 0 },
    },
  });
  const r = statsRow(mk('2024-01-01T00:00:01Z', 1.5e9), mk('2024-01-01T00:00:00Z', 1e9), 8 * 1024 ** 3);
  assert.deepEqual(r, {
    ID: 'aaaaaaaaaaaa',
    Container: 'aaaaaaaaaaaa',
    Name: 'w',
    CPUPerc: '50.00%',
    MemUsage: '16MiB / 64MiB',
    MemPerc: '25.00%',
    NetIO: '--',
    BlockIO: '1.5MB / 0B',
    PIDs: '3',
  });
  // no limit (max) → the host's memory
  const s = mk('2024-01-01T00:00:01Z', 0);
  s.stats.memory.limitBytes = Number.MAX_SAFE_INTEGER;
  assert.equal(statsRow(s, undefined, 8 * 1024 ** 3).MemUsage, '16MiB / 8GiB');
  // NetIO: received / sent, summed over the interfaces
  const e = (rx: number, tx: number) => ({ BytesReceived: rx, BytesSent: tx, PacketsReceived: 0, PacketsSent: 0, ErrorsIncoming: 0, ErrorsOutgoing: 0, DroppedPacketsIncoming: 0, DroppedPacketsOutgoing: 0 });
  assert.equal(statsRow({ ...s, stats: { ...s.stats, network: { eth0: e(1000, 200_000), eth1: e(500, 5000) } } }, undefined, 8 * 1024 ** 3).NetIO, '1.5kB / 205kB');
});

test('system df rows: totals, active, and what removing the unused would give back, as docker sums them', async () => {
  const { dfRows } = await import('../../src/cli/commands/df.js');
  const rows = dfRows({
    LayersSize: 10_000_000,
    Images: [
      { Id: 'sha256:a', Names: ['a:1'], Created: '', Size: 6_000_000, SharedSize: 1_000_000, Containers: 2 },
      { Id: 'sha256:b', Names: [], Created: '', Size: 5_000_000, SharedSize: 1_000_000, Containers: 0 },
    ],
    Containers: [
      { Id: 'c1', Name: 'x', Image: 'a:1', State: 'Running', SizeRw: 300_000, SizeRootFs: 6_300_000 },
      { Id: 'c2', Name: 'y', Image: 'a:1', State: 'Stopped', SizeRw: 100_000, SizeRootFs: 6_100_000 },
    ],
    Volumes: [
      { Name: 'v', Size: 2_000, RefCount: 0 },
      { Name: 'w', Size: 0, RefCount: 1 },
    ],
  });
  assert.deepEqual(rows, [
    { Type: 'Images', TotalCount: '2', Active: '1', Size: '10MB', Reclaimable: '5MB (50%)' },
    { Type: 'Containers', TotalCount: '2', Active: '1', Size: '400kB', Reclaimable: '100kB (25%)' },
    { Type: 'Local Volumes', TotalCount: '2', Active: '1', Size: '2kB', Reclaimable: '2kB (100%)' },
  ]);
});
