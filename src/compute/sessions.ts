// Stdio sessions between a front door's client and a process' monitor. A client may attach before the process
// exists (attach, then start, as docker's CLI does); its stdin is held until the monitor is connected.

import type { Attachment } from './backend.js';

export interface StdioClient {
  wantStdin: boolean;
  onOutput(stream: 1 | 2, data: Buffer): void;
  onEnd(): void;
}

export class StdioSession {
  private att?: Attachment;
  private readonly held: Buffer[] = [];
  private stdinClosed = false;
  private ended = false;

  constructor(
    readonly client: StdioClient,
    private readonly onDetach: (s: StdioSession) => void = () => {},
  ) {}

  get connected(): boolean {
    return this.att !== undefined;
  }

  connect(att: Attachment): void {
    if (this.ended) {
      att.detach();
      return;
    }
    this.att = att;
    att.onOutput((s, d) => this.client.onOutput(s, d));
    att.onClose(() => this.end());
    for (const b of this.held.splice(0)) att.writeStdin(b);
    if (this.stdinClosed) att.closeStdin();
  }

  writeStdin(b: Buffer): void {
    if (!this.client.wantStdin || this.stdinClosed) return;
    if (this.att) this.att.writeStdin(b);
    else this.held.push(b);
  }

  closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    if (this.att && this.client.wantStdin) this.att.closeStdin();
  }

  /** The client went away: drop the monitor connection, the process goes on. */
  detach(): void {
    this.att?.detach();
    this.onDetach(this);
    this.end();
  }

  /** The process' output has ended (or it never started). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onDetach(this);
    this.client.onEnd();
  }
}
