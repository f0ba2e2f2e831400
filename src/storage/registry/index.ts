// Opening the registry client: its configuration from the daemon's flags and the hosts file, on the storage service.

import { mkdir, chmod } from 'node:fs/promises';
import { invalid } from '../../common/errors.js';
import type { StorageService } from '../types.js';
import { parseMirrorFlag, readRegistryFile, RegistryHosts } from './hosts.js';
import type { RegistryService } from './service.js';
import { sweepTempFiles } from '../../common/atomic.js';

export interface OpenRegistryOptions {
  stateDir: string;
  configFile: string;
  mirrors: string[];
  insecure: string[];
  certsDir: string;
  timeoutMs: number;
  storage: StorageService;
  userAgent: string;
}

/** What the front doors use of the registry client. */
export type Registry = Pick<RegistryService, 'login' | 'logout' | 'resolve' | 'pullAllTags' | 'pull' | 'localTags' | 'push' | 'close'>;

/**
 * Checks the configuration now (a bad flag or hosts file stops the daemon's start), but loads the client itself (its
 * HTTP stack, ~7 MB resident) on the first pull, push or login: many daemons never talk to a registry.
 */
export async function openRegistry(o: OpenRegistryOptions): Promise<Registry> {
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  await chmod(o.stateDir, 0o700);
  await sweepTempFiles(o.stateDir); // auth.json and sources.json's interrupted writes
  const file = await readRegistryFile(o.configFile);
  const mirrors: Record<string, string[]> = {};
  for (const m of o.mirrors) {
    const { host, url } = parseMirrorFlag(m);
    (mirrors[host] ??= []).push(url);
  }
  for (const [h, urls] of Object.entries(file.mirrors ?? {})) (mirrors[h] ??= []).push(...urls);
  for (const h of o.insecure) if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(h)) throw invalid(`invalid insecure registry "${h}": want host[:port]`);
  if (!(o.timeoutMs > 0)) throw invalid('the registry timeout must be a positive number of seconds');
  const hosts = new RegistryHosts({
    mirrors,
    insecure: [...o.insecure, ...(file.insecure ?? [])],
    certsDir: o.certsDir,
    ...(file.fallbackToUpstream === undefined ? {} : { fallbackToUpstream: file.fallbackToUpstream }),
  });
  let service: Promise<RegistryService> | undefined;
  const get = () =>
    (service ??= import('./service.js').then(
      ({ RegistryService }) =>
        new RegistryService({
          stateDir: o.stateDir,
          hosts,
          timeoutMs: o.timeoutMs,
          inProcess: process.env.SILO_PULL_IN_PROCESS === '1',
          ...(Number(process.env.SILO_PULL_WORKERS) > 0 ? { downloadWorkers: Number(process.env.SILO_PULL_WORKERS) } : {}),
          openContent: () => o.storage.openContent(),
          getImage: (ref) => o.storage.getImage(ref),
          userAgent: o.userAgent,
        }),
    ));
  return {
    login: async (...a) => (await get()).login(...a),
    logout: async (...a) => (await get()).logout(...a),
    resolve: async (...a) => (await get()).resolve(...a),
    pullAllTags: async (...a) => (await get()).pullAllTags(...a),
    pull: async (...a) => (await get()).pull(...a),
    localTags: async (...a) => (await get()).localTags(...a),
    push: async (...a) => (await get()).push(...a),
    close: async () => (service ? (await service).close() : undefined),
  };
}
