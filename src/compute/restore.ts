// At start the compute service re-adopts the systems an earlier daemon left, as their one writer: running systems
// keep running and are watched again, those that ended meanwhile get their recorded exit codes, and what an
// interrupted operation half-made is removed. Storage and the network service restore their own objects when they
// open; here only what compute references is reconciled with them.

import { oneLine } from '../common/errors.js';
import type { IntentLog } from '../common/intents.js';
import type { Logger } from '../common/log.js';
import type { StorageService } from '../storage/types.js';
import { backendFor, type Backends } from './backend.js';
import type { SystemNetworking } from './networking.js';
import type { SystemStore } from './store.js';
import type { ComputeSystemRecord, SystemState } from './types.js';

export interface RestoreReport {
  adopted: number;
  /** Running systems found frozen (Silo froze them and died before thawing them): thawed. */
  thawed: number;
  exited: number;
  orphansRemoved: number;
  rolledBack: number;
}

/** What restore needs of the compute service: its store, backends and the operations it finishes. */
export interface RestoreContext {
  store: SystemStore;
  intents: IntentLog;
  backends: Backends;
  storage: StorageService;
  networking: SystemNetworking;
  log: Logger;
  /** Under the system's lock: the record read again and written. */
  setState(id: string, state: SystemState): Promise<void>;
  purge(id: string): Promise<void>;
  recordExit(id: string, st: { exitCode: number; finishedAt: string; oomKilled?: boolean }): Promise<void>;
  watchExit(id: string): void;
  mountRoot(rec: ComputeSystemRecord): Promise<void>;
  unmountRoot(id: string): Promise<void>;
}

const ADOPT_CONCURRENCY = 8;

export async function restoreSystems(c: RestoreContext): Promise<RestoreReport> {
  const { store, intents, backends, log } = c;
  const report: RestoreReport = { adopted: 0, thawed: 0, exited: 0, orphansRemoved: 0, rolledBack: 0 };
  await store.load();
  // Interrupted operations first: a create or remove is rolled back or finished, a start's half-made runtime undone.
  for (const it of await intents.pending()) {
    try {
      if (it.Op === 'system.create' || it.Op === 'system.remove') {
        await c.purge(it.Target);
        report.rolledBack++;
      } else if (it.Op === 'system.start' && store.has(it.Target) && store.find(it.Target).State !== 'Running') {
        const rec = store.find(it.Target);
        await backendFor(backends, rec.Document.Isolation, rec.Name).delete(it.Target, { force: true, keepLogs: true });
        report.rolledBack++;
      }
      await intents.clear(it.Id);
    } catch (e) {
      log.warn({ op: it.Op, id: it.Target, err: oneLine(e) }, 'recovering an interrupted operation failed');
    }
  }
  const records = store.all();
  const known = new Set(records.map((r) => r.Id));

  // Each record's runtime is asked on its own (one `runc state` each), so a few at a time: with many containers this
  // is most of the time before the API answers. Each system is asked of the backend its document records.
  const adopt = async (rec: ComputeSystemRecord): Promise<void> => {
    try {
      if (rec.State === 'Running' || rec.State === 'Paused') {
        const backend = backendFor(backends, rec.Document.Isolation, rec.Name);
        const st = await backend.state(rec.Id);
        if (st.status === 'running' || st.status === 'paused') {
          // Frozen while its record says running: Silo froze it and died before thawing it, or died before it could
          // record (and answer) a pause. Thawed now; a recorded pause stays.
          if (st.status === 'paused' && rec.State === 'Running') {
            await backend.resume(rec.Id);
            report.thawed++;
          } else if (st.status === 'running' && rec.State === 'Paused') await c.setState(rec.Id, 'Running');
          report.adopted++;
        } else {
          report.exited++;
          const exit = await backend.exitStatus(rec.Id);
          // No monitor and no exit record: the process went without a word (a host reboot); 255 as docker says.
          await c.recordExit(rec.Id, exit ?? { exitCode: 255, finishedAt: new Date().toISOString() });
          return;
        }
        c.watchExit(rec.Id);
      } else if (rec.State === 'Created') {
        await c.mountRoot(rec);
      } else {
        await c.unmountRoot(rec.Id);
      }
    } catch (e) {
      log.warn({ id: rec.Id, err: oneLine(e) }, 'adopting the system failed');
    }
  };
  const queue = [...records];
  await Promise.all(Array.from({ length: Math.min(ADOPT_CONCURRENCY, queue.length) }, async () => {
    for (let rec = queue.shift(); rec; rec = queue.shift()) await adopt(rec);
  }));

  // Runtime state or storage without a record: an interrupted create or remove. Nothing of Silo's may outlive its object.
  // A backend's runtime state for a system of another isolation mode is an orphan too.
  const isolationOf = new Map(records.map((r) => [r.Id, r.Document.Isolation ?? 'process']));
  for (const [isolation, backend] of backends) {
    for (const id of await backend.list()) {
      if (isolationOf.get(id) === isolation) continue;
      await backend.delete(id, { force: true }).catch((e) => log.warn({ isolation, id, err: oneLine(e) }, 'removing an orphan runtime failed'));
      await backend.unmountRoot(id).catch((e) => log.warn({ isolation, id, err: oneLine(e) }, 'unmounting an orphan root failed'));
      report.orphansRemoved++;
    }
  }
  // Namespaces and endpoints the network service holds for no system: asked to remove them, as it does its own objects.
  for (const n of c.networking.orphans(records.map((r) => r.Document.Container.Networking))) {
    await c.networking.teardown(n).catch((e) => log.warn({ err: oneLine(e) }, 'removing orphan network pieces failed'));
    report.orphansRemoved++;
  }
  for (const id of await c.storage.listRoots()) {
    if (known.has(id)) continue;
    await c.purge(id).catch((e) => log.warn({ id, err: oneLine(e) }, 'removing an orphan root failed'));
    report.orphansRemoved++;
  }
  return report;
}
