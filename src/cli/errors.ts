// Errors the CLI prints on one line and maps to docker's exit codes (125: the client or the daemon failed).

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 125,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The daemon answered with an error: printed as `Error response from daemon: <message>`. */
export class DaemonError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
    exitCode = 125,
  ) {
    super(message, exitCode);
    this.name = 'DaemonError';
  }
}

/** Docker's exit codes for a command that could not be started: 126 cannot execute, 127 not found. */
export function startFailureCode(message: string): number {
  if (/executable file not found|no such file or directory|command not found/i.test(message)) return 127;
  if (/permission denied|cannot execute|exec format error|is a directory|not executable/i.test(message)) return 126;
  return 125;
}

/** A start error of run/exec/start with docker's 126/127 when the message says so. */
export function asStartFailure(e: unknown): unknown {
  if (e instanceof DaemonError) return new DaemonError(e.message, e.status, e.code, startFailureCode(e.message));
  return e;
}

/** What to print for an error (one line) and the exit code. */
export function describe(e: unknown): { line: string; code: number } {
  const msg = (m: string) => m.replace(/\s*\n\s*/g, '; ').trim();
  // By name, not instanceof: a verb loaded from the compiled modules (cp) has its own copy of these classes.
  const named = (n: string) => e instanceof Error && e.name === n && typeof (e as CliError).exitCode === 'number';
  if (e instanceof DaemonError || named('DaemonError')) return { line: `Error response from daemon: ${msg((e as Error).message)}`, code: (e as CliError).exitCode };
  if (e instanceof CliError || named('CliError')) return { line: `silo: ${msg((e as Error).message)}`, code: (e as CliError).exitCode };
  return { line: `silo: ${msg(e instanceof Error ? e.message : String(e))}`, code: 125 };
}

/** Run `fn` for each target like docker's multi-container verbs: errors printed as they come, exit 125 if any failed. */
export async function eachTarget(targets: string[], fn: (t: string) => Promise<void>): Promise<number> {
  let code = 0;
  for (const t of targets) {
    try {
      await fn(t);
    } catch (e) {
      const d = describe(e);
      process.stderr.write(`${d.line}\n`);
      code = d.code;
    }
  }
  return code;
}

export const CLI_VERSION = '0.1.0';
