// The node binary's pages that only a start needed go back to the kernel (release/release.c): once the daemon serves,
// and once each front door has loaded its server (fastify and its routes, or gRPC: compiling them reads Node's
// built-in modules' sources and runs the parser and compiler, pages a request seldom needs again). They are clean
// file pages, so this costs only a minor fault for a page needed again. bench/run.ts, 7 Dec: the daemon's idle RSS 50.4
// MB fresh and 68.0 after the workload, against 74.7 and 84.2 the run before.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { oneLine } from '../common/errors.js';
import type { Logger } from '../common/log.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Built by scripts/setup.sh; without it (no C compiler at setup) nothing is released. */
export const RELEASE_ADDON = resolve(REPO, 'build/release/silo-release.node');

let addon: { releaseStartPages(): number } | null | undefined;

/** Give back the start-up pages, logging the resident set before and after; `after` names the start. */
export function releaseStartPages(log: Logger, after: string, path = RELEASE_ADDON): void {
  try {
    if (addon === undefined) {
      const m = { exports: {} as { releaseStartPages(): number } };
      addon = existsSync(path) ? (process.dlopen(m, path), m.exports) : null;
    }
    if (!addon) return;
    const before = process.memoryUsage.rss();
    const advised = addon.releaseStartPages();
    const mb = (b: number) => Math.round(b / 1e5) / 10;
    log.info({ after, advisedMB: mb(advised), rssBeforeMB: mb(before), rssAfterMB: mb(process.memoryUsage.rss()) }, "released the node binary's start-up pages");
  } catch (e) {
    addon = null;
    log.warn({ err: oneLine(e) }, "could not release the node binary's start-up pages");
  }
}
