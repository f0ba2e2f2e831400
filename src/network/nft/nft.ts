// Running nft: every change is one `nft -f -` batch on stdin, which the kernel applies as one transaction (all or
// nothing). Only Silo's own table is ever named; the ruleset as a whole is never flushed.

import { run } from '../../common/exec.js';
import { internal } from '../../common/errors.js';
import { tableSkeleton } from './ruleset.js';

export class Nft {
  constructor(readonly table: string) {}

  async batch(text: string): Promise<void> {
    if (!text.trim()) return;
    const r = await run('nft', ['-f', '-'], { input: text, allowFail: true });
    if (r.code !== 0) {
      const why = r.stderr.trim().split('\n')[0] ?? 'failed';
      throw internal(`nft: ${why}`, new Error(`${r.stderr}\n--- batch ---\n${text.slice(0, 2000)}`));
    }
  }

  async exists(): Promise<boolean> {
    const r = await run('nft', ['list', 'table', 'inet', this.table], { allowFail: true });
    return r.code === 0;
  }

  /** Replaces the table with the skeleton plus `extra` (LB objects, elements) in one transaction. */
  async rebuild(extra: string): Promise<void> {
    const t = this.table;
    await this.batch(`add table inet ${t}\ndelete table inet ${t}\n${tableSkeleton(t)}${extra}`);
  }

  async destroy(): Promise<void> {
    if (await this.exists()) await this.batch(`delete table inet ${this.table}\n`);
  }

  /** Elements of one map as [key, value] pairs, for reading back LB slot tables; [] if the map is missing. */
  async mapElements(map: string): Promise<Array<[number, string]>> {
    const r = await run('nft', ['-j', 'list', 'map', 'inet', this.table, map], { allowFail: true });
    if (r.code !== 0) return [];
    const doc = JSON.parse(r.stdout) as { nftables: Array<{ map?: { elem?: Array<[number, string]> } }> };
    return doc.nftables.find((x) => x.map)?.map?.elem ?? [];
  }
}
