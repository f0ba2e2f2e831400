// The event bus every service publishes to and every front door reads from (docker events, the native /v1/events).
// It sits below the services, so none of them imports the host to publish.

import { EventEmitter } from 'node:events';

export interface SiloEvent {
  Type: 'system' | 'image' | 'daemon' | 'network' | 'volume';
  Action: string;
  Id: string;
  Name?: string;
  Attributes: Record<string, string>;
  Time: string;
  /** Nanoseconds since the epoch, for ordering and docker's timeNano. */
  TimeNano: number;
}

/** Events are published after the state they describe has been persisted. A short history serves `since`. */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly history: SiloEvent[] = [];

  constructor(private readonly keep = 1000) {
    this.emitter.setMaxListeners(0);
  }

  publish(type: SiloEvent['Type'], action: string, id: string, attrs: Record<string, string> = {}, name?: string): void {
    const now = Date.now();
    const ev: SiloEvent = {
      Type: type,
      Action: action,
      Id: id,
      Name: name,
      Attributes: name ? { name, ...attrs } : attrs,
      Time: new Date(now).toISOString(),
      TimeNano: now * 1e6,
    };
    this.history.push(ev);
    if (this.history.length > this.keep) this.history.shift();
    this.emitter.emit('event', ev);
  }

  /** Past events since `sinceMs` (if given), then live ones, until the returned function is called. */
  subscribe(cb: (e: SiloEvent) => void, sinceMs?: number): () => void {
    if (sinceMs !== undefined) for (const e of this.history) if (e.TimeNano / 1e6 >= sinceMs) cb(e);
    this.emitter.on('event', cb);
    return () => this.emitter.off('event', cb);
  }
}
