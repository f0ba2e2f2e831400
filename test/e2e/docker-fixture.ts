// A test daemon driven through the real docker CLI (DOCKER_HOST=unix://<runDir>/docker.sock).

import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { sleep, TestDaemon, type CliResult } from './harness.js';

export class DockerFixture {
  readonly d = new TestDaemon();

  get host(): string {
    return `unix://${this.d.runDir}/docker.sock`;
  }

  /** The daemon answers on silo.sock first; docker.sock follows a moment later. */
  async start(): Promise<void> {
    await this.d.start();
    const path = `${this.d.runDir}/docker.sock`;
    for (let i = 0; i < 200; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = connect(path);
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (ok) return;
      await sleep(25);
    }
    throw new Error(`no Docker API on ${path}`);
  }

  /** Run `docker args...` (or, with `shell`, a sh -c line using docker) and collect its output and exit code. */
  run(args: string[], opts: { input?: string; cwd?: string; shell?: boolean; timeoutMs?: number } = {}): Promise<CliResult> {
    return new Promise((res, rej) => {
      const [cmd, argv] = opts.shell ? ['sh', ['-c', args.join(' ')]] : ['docker', args];
      const p = spawn(cmd, argv, { cwd: opts.cwd, env: { ...process.env, DOCKER_HOST: this.host, DOCKER_CLI_HINTS: 'false' }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      p.stdout.on('data', (b) => (stdout += b));
      p.stderr.on('data', (b) => (stderr += b));
      p.on('error', rej);
      p.on('close', (code) => {
        clearTimeout(timer);
        res({ code: code ?? 128, stdout, stderr });
      });
      p.stdin.end(opts.input ?? '');
    });
  }

  async teardown(): Promise<string[]> {
    return this.d.teardown();
  }
}

export const randomPort = () => 20000 + Math.floor(Math.random() * 20000);
