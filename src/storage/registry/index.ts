// Opening the registry client: its configuration from the daemon's flags and the hosts file, on the storage service.

import { mkdir, chmod } from 'node:fs/promises';
import { invalid } from '../../common/errors.js';
import type { StorageService } from '../types.js';
import { parseMirrorFlag, readRegistryFile, RegistryHosts } from './hosts.js';
import { RegistryService } from './service.js';
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

export async function openRegistry(o: OpenRegistryOptions): Promise<RegistryService> {
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
  return new RegistryService({
    stateDir: o.stateDir,
    hosts,
    timeoutMs: o.timeoutMs,
    openContent: () => o.storage.openContent(),
    getImage: (ref) => o.storage.getImage(ref),
    userAgent: o.userAgent,
  });
}
