// What docker clients set that a compute system document has no field for (RestartPolicy, Init, the raw Binds,
// ExposedPorts, PublishAllPorts, Healthcheck...), kept per container beside Silo's record so inspect can show it
// back as it was sent. Silo's record stays the truth for everything it models; this is only docker's view.

import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, removeFile, sweepTempFiles, writeJsonAtomic } from '../../common/atomic.js';

export interface DockerMeta {
  /** The Config as the client sent it (Image as typed, Cmd, Env...). */
  Config: Record<string, any>;
  HostConfig: Record<string, any>;
  /** Network name → docker's endpoint config (aliases, IPAM), as sent. */
  Networks: Record<string, any>;
  /** Mounts as docker reports them. */
  Mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean; Mode: string; Driver?: string; Propagation: string }[];
}

/**
 * At the daemon's start, before any door serves (the Docker door loads on first use): the door's directories are made
 * and the temp files of writes a crash interrupted are swept, every start, so its state never waits for a client, and
 * a door first used on a full disk finds its directories there. The door does the same when it gets ready.
 */
export async function prepareDockerState(stateDir: string): Promise<void> {
  const dir = join(stateDir, 'docker');
  await mkdir(join(dir, 'containers'), { recursive: true, mode: 0o700 });
  await sweepTempFiles(dir);
  await sweepTempFiles(join(dir, 'containers'));
}

export class MetaStore {
  private readonly cache = new Map<string, DockerMeta>();

  constructor(private readonly dir: string) {}

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await sweepTempFiles(this.dir);
    for (const f of await readdir(this.dir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(f)) continue;
      const m = await readJson<DockerMeta>(join(this.dir, f));
      if (m) this.cache.set(f.slice(0, 64), m);
    }
  }

  get(id: string): DockerMeta | undefined {
    return this.cache.get(id);
  }

  async set(id: string, m: DockerMeta): Promise<void> {
    this.cache.set(id, m);
    await writeJsonAtomic(join(this.dir, `${id}.json`), m);
  }

  async delete(id: string): Promise<void> {
    this.cache.delete(id);
    removeFile(join(this.dir, `${id}.json`));
  }

  /** Ids whose container is gone (removed while this front door was not listening). */
  ids(): string[] {
    return [...this.cache.keys()];
  }
}
