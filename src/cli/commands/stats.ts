// `silo stats [--no-stream] [--format json|TEMPLATE] [CONTAINER...]`: CPU % from two samples of cpu.totalNs.

import { totalmem } from 'node:os';
import type { System as ComputeSystemRecord, Statistics, SystemProperties } from '../../api/native/wire.js';
import { call, enc } from '../client.js';
import { describe } from '../errors.js';
import { bytesSize, humanSize, outputFormat, percent, renderTemplate, shortId, table } from '../format.js';

interface Sample {
  rec: ComputeSystemRecord;
  stats: Statistics;
  at: number;
}

export interface StatsRow {
  ID: string;
  Container: string;
  Name: string;
  CPUPerc: string;
  MemUsage: string;
  MemPerc: string;
  NetIO: string;
  BlockIO: string;
  PIDs: string;
}

/** One row from a sample and the previous sample of the same system (CPU % is 100 per busy core, as docker's). */
export function statsRow(cur: Sample, prev: Sample | undefined, hostMem: number): StatsRow {
  let cpu = 0;
  if (prev) {
    const wall = (Date.parse(cur.stats.timestamp) - Date.parse(prev.stats.timestamp)) * 1e6 || (cur.at - prev.at) * 1e6;
    if (wall > 0) cpu = ((cur.stats.cpu.totalNs - prev.stats.cpu.totalNs) / wall) * 100;
  }
  const m = cur.stats.memory;
  // Received / sent over every interface, as docker stats adds them up; no endpoint (--network none): nothing to show.
  const eps = Object.values(cur.stats.network ?? {});
  const net = eps.length ? { rx: eps.reduce((a, e) => a + e.BytesReceived, 0), tx: eps.reduce((a, e) => a + e.BytesSent, 0) } : undefined;
  const limit = m.limitBytes > 0 && m.limitBytes < hostMem ? m.limitBytes : hostMem;
  return {
    ID: shortId(cur.rec.Id),
    Container: shortId(cur.rec.Id),
    Name: cur.rec.Name,
    CPUPerc: percent(Math.max(0, cpu)),
    MemUsage: `${bytesSize(m.usageBytes)} / ${bytesSize(limit)}`,
    MemPerc: percent(limit ? (m.usageBytes / limit) * 100 : 0),
    NetIO: net ? `${humanSize(net.rx)} / ${humanSize(net.tx)}` : '--',
    BlockIO: `${humanSize(cur.stats.io.readBytes)} / ${humanSize(cur.stats.io.writeBytes)}`,
    PIDs: String(cur.stats.pids.current),
  };
}

async function sample(refs: string[] | undefined): Promise<{ samples: Sample[]; errors: string[] }> {
  const recs: ComputeSystemRecord[] = [];
  const errors: string[] = [];
  if (refs) {
    for (const r of refs) {
      try {
        recs.push(await call<ComputeSystemRecord>('GET', `/v1/systems/${enc(r)}`));
      } catch (e) {
        errors.push(describe(e).line);
      }
    }
  } else recs.push(...(await call<ComputeSystemRecord[]>('GET', '/v1/systems')));
  const samples: Sample[] = [];
  await Promise.all(
    recs
      .filter((r) => r.State === 'Running' || r.State === 'Paused')
      .map(async (rec) => {
        try {
          const p = await call<SystemProperties>('GET', `/v1/systems/${enc(rec.Id)}/properties?types=Statistics`);
          if (p.Statistics) samples.push({ rec, stats: p.Statistics, at: Date.now() });
        } catch {
          /* it stopped meanwhile */
        }
      }),
  );
  const order = new Map(recs.map((r, i) => [r.Id, i]));
  samples.sort((a, b) => order.get(a.rec.Id)! - order.get(b.rec.Id)!);
  return { samples, errors };
}

export async function stats(refs: string[], f: { stream?: boolean; format?: string; trunc?: boolean }): Promise<number> {
  const targets = refs.length ? refs : undefined;
  const fmt = outputFormat(f.format);
  const hostMem = totalmem();
  const clear = process.stdout.isTTY && f.stream !== false && fmt.kind === 'table';
  let prev = new Map<string, Sample>();
  const first = await sample(targets);
  if (first.errors.length) {
    for (const e of first.errors) process.stderr.write(`${e}\n`);
    return 125;
  }
  for (const s of first.samples) prev.set(s.rec.Id, s);
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const cur = await sample(targets);
    const rows = cur.samples.map((s) => statsRow(s, prev.get(s.rec.Id), hostMem));
    if (f.trunc === false) rows.forEach((r, i) => (r.ID = r.Container = cur.samples[i].rec.Id));
    let text: string;
    // JSON lines carry docker's display fields plus the raw Statistics for scripts.
    if (fmt.kind === 'json') text = rows.map((r, i) => JSON.stringify({ ...r, Statistics: cur.samples[i].stats })).join('\n');
    else if (fmt.kind === 'template') text = rows.map((r) => renderTemplate(fmt.tpl, r)).join('\n');
    else
      text = table(
        ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'],
        rows.map((r) => [r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs]),
      );
    process.stdout.write(`${clear ? '\x1b[2J\x1b[H' : ''}${text}${text ? '\n' : ''}`);
    if (f.stream === false) return 0;
    prev = new Map(cur.samples.map((s) => [s.rec.Id, s]));
  }
}
