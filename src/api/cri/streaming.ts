// Placeholder interface of the streaming server (exec, attach, port-forward URLs); see streaming-server.ts.
import type { ComputeSystemRecord } from '../../compute/types.js';

export interface Streaming {
  exec(rec: ComputeSystemRecord, req: { cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): string;
  attach(rec: ComputeSystemRecord, req: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): string;
  portForward(rec: ComputeSystemRecord, req: { port: number[] }): string;
}
