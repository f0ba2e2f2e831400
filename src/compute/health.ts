// Health checks (docker's HEALTHCHECK): a probe process run in the system every interval; its exit code makes the
// system healthy or, after `Retries` failures in a row past the start period, unhealthy. Health is a running
// system's live property, kept in memory: a restarted daemon starts its probes again from "starting", as dockerd
// does for a restarted container.

import type { EventBus } from '../common/events.js';
import type { Logger } from '../common/log.js';
import { oneLine } from '../common/errors.js';
import type { HealthCheck } from './spec/schema.js';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

/** Runs `args` in the system; resolves with its exit code and (capped) output, -1 when it outlived `timeoutMs`. */
export type Probe = (systemId: string, args: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>;

// docker's defaults and limits.
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_START_INTERVAL_MS = 5_000;
const DEFAULT_RETRIES = 3;
const KEEP_LOG = 5;

/** docker's Healthcheck, in an image config or a create body: nanoseconds, 0 or absent = the default. */
export interface DockerHealthcheck {
  Test?: string[] | null;
  Interval?: number | null;
  Timeout?: number | null;
  StartPeriod?: number | null;
  StartInterval?: number | null;
  Retries?: number | null;
}

/** docker's Healthcheck onto the spec's (milliseconds); undefined when it names no test (inherit the image's). */
export function healthFromDocker(h: DockerHealthcheck | undefined): HealthCheck | undefined {
  if (!h?.Test?.length) return undefined;
  const ms = (ns?: number | null) => (ns ? Math.max(1, Math.round(ns / 1e6)) : undefined);
  const out: HealthCheck = { Test: h.Test };
  const times = { IntervalMs: ms(h.Interval), TimeoutMs: ms(h.Timeout), StartPeriodMs: ms(h.StartPeriod), StartIntervalMs: ms(h.StartInterval) };
  for (const [k, v] of Object.entries(times)) if (v !== undefined) out[k as keyof typeof times] = v;
  if (h.Retries) out.Retries = h.Retries;
  return out;
}

/** The probe's command: CMD runs its args, CMD-SHELL a shell line; NONE (or nothing) is no check. */
export function probeArgs(hc: HealthCheck | undefined): string[] | undefined {
  const t = hc?.Test ?? [];
  if (t[0] === 'CMD' && t.length > 1) return t.slice(1);
  if (t[0] === 'CMD-SHELL' && t.length > 1) return ['/bin/sh', '-c', t.slice(1).join(' ')];
  return undefined;
}

/** The state after one probe's result (pure). Failures inside the start period do not count until it was healthy. */
export function nextHealth(s: HealthState, r: HealthLogEntry, retries: number, inStartPeriod: boolean): HealthState {
  const Log = [...s.Log, r].slice(-KEEP_LOG);
  if (r.ExitCode === 0) return { Status: 'healthy', FailingStreak: 0, Log };
  if (inStartPeriod && s.Status !== 'healthy') return { ...s, Log };
  const FailingStreak = s.FailingStreak + 1;
  return { Status: FailingStreak >= retries ? 'unhealthy' : s.Status, FailingStreak, Log };
}

export class HealthMonitor {
  private readonly states = new Map<string, HealthState>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly probe: Probe,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  /** Start probing a system that has just started (or was adopted running). */
  watch(id: string, name: string, hc: HealthCheck | undefined): void {
    const args = probeArgs(hc);
    if (!args) return;
    this.unwatch(id);
    this.states.set(id, { Status: 'starting', FailingStreak: 0, Log: [] });
    const startedAt = Date.now();
    const startPeriod = hc?.StartPeriodMs ?? 0;
    const inStart = () => Date.now() - startedAt < startPeriod;
    const delay = () => (inStart() && this.states.get(id)?.Status === 'starting' ? (hc?.StartIntervalMs ?? DEFAULT_START_INTERVAL_MS) : (hc?.IntervalMs ?? DEFAULT_INTERVAL_MS));
    const tick = async () => {
      const start = new Date().toISOString();
      const r = await this.probe(id, args, hc?.TimeoutMs ?? DEFAULT_TIMEOUT_MS).catch((e) => ({ exitCode: -1, output: oneLine(e) }));
      const before = this.states.get(id);
      if (!before || !this.timers.has(id)) return; // stopped meanwhile
      const after = nextHealth(before, { Start: start, End: new Date().toISOString(), ExitCode: r.exitCode, Output: r.output }, hc?.Retries || DEFAULT_RETRIES, inStart());
      this.states.set(id, after);
      if (after.Status !== before.Status) {
        this.log.info({ id, status: after.Status }, 'health changed');
        this.events.publish('system', `health_status: ${after.Status}`, id, {}, name);
      }
      this.timers.set(id, setTimeout(() => void tick(), delay()).unref());
    };
    this.timers.set(id, setTimeout(() => void tick(), delay()).unref());
  }

  /** Stop probing (the system stopped); its last health stays readable until it starts again or goes. */
  unwatch(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }

  forget(id: string): void {
    this.unwatch(id);
    this.states.delete(id);
  }

  get(id: string): HealthState | undefined {
    const s = this.states.get(id);
    return s && { ...s, Log: s.Log.map((e) => ({ ...e })) };
  }
}
