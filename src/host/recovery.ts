// At start the daemon re-adopts what an earlier daemon left: running systems keep running and are watched again,
// those that ended meanwhile get their recorded exit codes, and what an interrupted operation half-made is removed.

import { oneLine } from '../common/errors.js';
import type { IntentLog } from '../common/intents.js';
import { backendFor, type Backends } from '../compute/backend.js';
import type { ComputeService } from '../compute/service.js';
import type { SystemStore } from '../compute/store.js';
import type { StorageService } from '../storage/types.js';
import type { Logger } from '../common/log.js';

export interface RecoveryReport {
  adopted: number;
  exited: number;
  orphansRemoved: number;
  rolledBack: number;
}

const ADOPT_CONCURRENCY = 8;

export async function recover(store: SystemStore, intents: IntentLog, compute: ComputeService, backends: Backends, storage: StorageService, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = { adopted: 0, exited: 0, orphansRemoved: 0, rolledBack: 0 };
  await store.load();
  // Interrupted operations first: a create or remove is rolled back or finished, a start's half-made runtime undone.
  for (const it of await intents.pending()) {
    try {
      if (it.Op === 'system.create' || it.Op === 'system.remove') {
        await compute.purge(it.Target);
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
  const adopt = async (rec: (typeof records)[number]): Promise<void> => {
    try {
      if (rec.State === 'Running' || rec.State === 'Paused') {
        const backend = backendFor(backends, rec.Document.Isolation, rec.Name);
        const st = await backend.state(rec.Id);
        if (st.status === 'running' || st.status === 'paused') {
          const state = st.status === 'paused' ? 'Paused' : 'Running';
          if (rec.State !== state) {
            rec.State = state;
            await store.save(rec);
          }
          report.adopted++;
        } else {
          report.exited++;
          const exit = await backend.exitStatus(rec.Id);
          // No monitor and no exit record: the process went without a word (a host reboot); 255 as docker says.
          await compute.recordExit(rec.Id, exit ?? { exitCode: 255, finishedAt: new Date().toISOString() });
          return;
        }
        compute.watchExit(rec.Id);
      } else if (rec.State === 'Created') {
        await compute.mountRoot(rec);
      } else {
        await compute.unmountRoot(rec.Id);
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
  for (const n of compute.networking.orphans(records.map((r) => r.Document.Container.Networking))) {
    await compute.networking.teardown(n).catch((e) => log.warn({ err: oneLine(e) }, 'removing orphan network pieces failed'));
    report.orphansRemoved++;
  }
  for (const id of await storage.listRoots()) {
    if (known.has(id)) continue;
    await compute.purge(id).catch((e) => log.warn({ id, err: oneLine(e) }, 'removing an orphan root failed'));
    report.orphansRemoved++;
  }
  return report;
}
