// Entry point of the `vm` isolation backend (a QEMU utility VM per container, restored from templates).

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmBackend } from './backend.js';
import type { Logger } from '../../common/log.js';

export { VmBackend } from './backend.js';

/** build/vm of the package, where scripts/build-vm.sh puts the kernel, the initramfs and the agent. */
export const DEFAULT_BUILD_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../build/vm');

export async function openVmIsolation(opts: {
  stateDir: string;
  runDir: string;
  cgroupParent: string;
  templates?: boolean;
  /** Spares kept restored ahead (spares.ts); default 1. */
  spares?: number;
  buildDir?: string;
  /** Log rotation unless a create says (the daemon's defaults): bytes (-1 none), files kept. */
  logMaxSize?: number;
  logMaxFiles?: number;
  log: Logger;
}): Promise<VmBackend> {
  const b = new VmBackend({
    stateDir: opts.stateDir,
    runDir: opts.runDir,
    cgroupParent: opts.cgroupParent.replace(/^\/+|\/+$/g, ''),
    buildDir: opts.buildDir ?? process.env.SILO_VM_BUILD_DIR ?? DEFAULT_BUILD_DIR,
    templates: opts.templates ?? true,
    spares: opts.spares ?? 1,
    defaultMemoryMiB: Number(process.env.SILO_VM_MEMORY_MIB ?? 128),
    bootTimeoutMs: Number(process.env.SILO_VM_BOOT_TIMEOUT_MS ?? 45_000),
    logMaxSize: opts.logMaxSize ?? 20 * 1024 * 1024,
    logMaxFiles: opts.logMaxFiles ?? 5,
    log: opts.log,
  });
  await b.init();
  return b;
}
