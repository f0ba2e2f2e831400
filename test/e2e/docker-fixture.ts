// A test daemon driven through the real docker CLI (DOCKER_HOST=unix://<runDir>/docker.sock).

import { connect } from 'node:net';
import { runProcess, sleep, TestDaemon, type CliResult } from './harness.js';

export class DockerFixture {
  readonly d = new TestDaemon();

  get host(): string {
    return `unix://${this.d.runDir}/docker.sock`;
  }

  /** The daemon answers on silo.sock first; docker.sock follows a moment later. */
  async start(env: Record<string, string> = {}): Promise<void> {
    await this.d.start(env);
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
    const [cmd, argv] = opts.shell ? ['sh', ['-c', args.join(' ')]] : ['docker', args];
    return runProcess(cmd, argv, { ...opts, env: { DOCKER_HOST: this.host, DOCKER_CLI_HINTS: 'false' } });
  }

  async teardown(): Promise<string[]> {
    return this.d.teardown();
  }
}

export const randomPort = () => 20000 + Math.floor(Math.random() * 20000);
