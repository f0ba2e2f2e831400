// Item 4: HTTP to a busybox httpd (a 4 KiB file, one connection per request: busybox httpd does not keep alive, so
// every request also pays the connection setup the port-publishing path adds). wrk from Debian loads it through the
// published port on 127.0.0.1 and directly at the container's own address; rounds alternate the targets.

import http from 'node:http';
import { errText, exec, sleep } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export const HTTPD_CMD = ['sh', '-c', 'mkdir -p /www && dd if=/dev/zero of=/www/f bs=4096 count=1 2>/dev/null && exec httpd -f -p 80 -h /www'];

export interface HttpTarget {
  key: string;
  label: string;
  url: string;
}

export interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

export interface NetworkRow {
  key: string;
  label: string;
  url: string;
  na?: string;
  rps?: Summary;
  p50ms?: Summary;
  p99ms?: Summary;
  errors?: number;
}

function ms(v: string, unit: string): number {
  return Number(v) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[unit];
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p = (q: string) => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? ms(m[1], m[2]) : NaN;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!rps) throw new Error(`wrk printed no rate: ${out.trim().slice(-200)}`);
  const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return { rps: Number(rps[1]), p50ms: p('50'), p99ms: p('99'), errors };
}

export async function wrk(url: string, secs: number): Promise<WrkResult> {
  const r = await exec('wrk', ['-t2', '-c16', `-d${secs}s`, '--latency', url], { timeoutMs: (secs + 30) * 1000 });
  return parseWrk(r.stdout);
}

/** Until the URL answers 200 (the httpd is up and the port is published). */
export async function waitHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const code = await new Promise<number>((res) => {
      const req = http.get(url, { timeout: 1000 }, (r) => {
        r.resume();
        res(r.statusCode ?? 0);
      });
      req.on('error', () => res(0));
      req.on('timeout', () => req.destroy());
    });
    if (code === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200`);
    await sleep(100);
  }
}

export async function measureHttp(targets: HttpTarget[], rounds: number, secs: number, log: (m: string) => void): Promise<NetworkRow[]> {
  const res = new Map<string, WrkResult[]>();
  const na = new Map<string, string>();
  for (const t of targets) {
    try {
      await waitHttp(t.url);
      await wrk(t.url, 1); // warm-up: conntrack, ARP, page cache
    } catch (e) {
      na.set(t.key, errText(e));
      log(`network: ${t.label}: n/a (${na.get(t.key)})`);
    }
  }
  const live = targets.filter((t) => !na.has(t.key));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < live.length; j++) {
      const t = live[(r + j) % live.length];
      const w = await wrk(t.url, secs);
      (res.get(t.key) ?? res.set(t.key, []).get(t.key)!).push(w);
      log(`network: ${t.label}: ${w.rps.toFixed(0)} req/s, p99 ${w.p99ms.toFixed(2)} ms`);
    }
  }
  return targets.map((t) => {
    const xs = res.get(t.key);
    if (!xs?.length) return { key: t.key, label: t.label, url: t.url, na: na.get(t.key) ?? 'no samples' };
    return {
      key: t.key,
      label: t.label,
      url: t.url,
      rps: summarize(xs.map((x) => x.rps)),
      p50ms: summarize(xs.map((x) => x.p50ms)),
      p99ms: summarize(xs.map((x) => x.p99ms)),
      errors: xs.reduce((a, x) => a + x.errors, 0),
    };
  });
}
