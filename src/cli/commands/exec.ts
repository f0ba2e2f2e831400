// `silo exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG...]`

import { readFileSync } from 'node:fs';
import type { Exec as ExecRecord } from '../../api/native/wire.js';
import { call, enc, resolveId, upgrade } from '../client.js';
import { asStartFailure, CliError } from '../errors.js';
import { buildExecProcess } from '../flags.js';
import { terminalSize } from '../stream.js';
import { runSession } from './session.js';

export interface ExecFlags {
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
}

export async function exec(ref: string, command: string[], f: ExecFlags): Promise<number> {
  const envFiles = (f.envFile ?? []).map((p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw new CliError(`open ${p}: ${(e as Error).message}`);
    }
  });
  const proc = buildExecProcess(command, f, { env: process.env, envFiles, consoleSize: f.tty ? terminalSize() : undefined });
  const id = await resolveId(ref);
  const { Id } = await call<{ Id: string }>('POST', `/v1/systems/${enc(id)}/processes`, proc);
  const base = `/v1/processes/${enc(Id)}`;
  if (f.detach) {
    await call('POST', `${base}/start?detach=1`).catch((e: unknown) => {
      throw asStartFailure(e);
    });
    return 0;
  }
  const socket = await upgrade('POST', `${base}/start`).catch((e: unknown) => {
    throw asStartFailure(e);
  });
  await runSession({
    socket,
    tty: !!f.tty,
    stdin: !!f.interactive,
    resize: (h, w) => call('POST', `${base}/resize?h=${h}&w=${w}`),
  });
  // The output can end a moment before the daemon records the exit.
  for (let i = 0, delay = 5; ; i++, delay = Math.min(delay * 2, 200)) {
    const r = await call<ExecRecord>('GET', base);
    if (!r.Running && r.ExitCode !== undefined) return r.ExitCode;
    if (i > 40) throw new CliError(`exec ${Id.slice(0, 12)}: no exit code from the daemon`);
    await new Promise((res) => setTimeout(res, delay));
  }
}
