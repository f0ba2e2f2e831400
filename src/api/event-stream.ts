// The event stream both HTTP doors answer with: the bus's history since `since`, then live events, ended at `until`
// (at once for a time already past, after that history). Each door maps and filters an event into its line.

import type { ServerResponse } from 'node:http';
import type { EventBus, SiloEvent } from '../common/events.js';

export function streamEvents(res: ServerResponse, bus: EventBus, o: { since?: number; until?: number }, line: (e: SiloEvent) => string | undefined): void {
  let off = () => {};
  const stop = () => {
    off();
    if (!res.writableEnded) res.end();
  };
  off = bus.subscribe((e) => {
    if (o.until !== undefined && e.TimeNano / 1e6 > o.until) return stop();
    const l = line(e);
    if (l !== undefined) res.write(l);
  }, o.since);
  res.on('close', () => off());
  if (o.until !== undefined) setTimeout(stop, Math.max(0, o.until - Date.now())).unref();
}
