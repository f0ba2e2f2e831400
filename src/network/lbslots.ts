// Backend selection for a load balancer is a fixed table of LB_SLOTS slots (numgen random or jhash of the source,
// mod LB_SLOTS) → backend address. Adding or removing a backend moves only the slots needed to keep the shares even
// (about LB_SLOTS/n of them), so a change is a handful of map elements and sticky (SourceIP) clients of the other
// backends keep their backend. Pure.

import { invalid } from '../common/errors.js';

/**
 * Rebalance `current` (slot → backend key, undefined = empty) over `backends`. Returns the new table and the slot
 * indices that changed.
 */
export function rebalance(current: (string | undefined)[], backends: string[], slotCount: number): { slots: (string | undefined)[]; changed: number[] } {
  if (backends.length > slotCount) throw invalid(`a load balancer has at most ${slotCount} backends`);
  const slots = Array.from({ length: slotCount }, (_, i) => current[i]);
  const live = new Set(backends);
  const free: number[] = [];
  const held = new Map<string, number[]>(backends.map((b) => [b, []]));
  for (let i = 0; i < slotCount; i++) {
    const b = slots[i];
    if (b !== undefined && live.has(b)) held.get(b)!.push(i);
    else free.push(i);
  }
  if (backends.length > 0) {
    // The backends that already hold the most keep the larger quota, so fewer slots move.
    const pos = new Map(backends.map((b, i) => [b, i]));
    const order = [...backends].sort((a, b) => held.get(b)!.length - held.get(a)!.length || pos.get(a)! - pos.get(b)!);
    const base = Math.floor(slotCount / backends.length);
    let extra = slotCount % backends.length;
    const quota = new Map<string, number>();
    for (const b of order) quota.set(b, base + (extra-- > 0 ? 1 : 0));
    for (const b of order) {
      const mine = held.get(b)!;
      while (mine.length > quota.get(b)!) free.push(mine.pop()!);
    }
    free.sort((a, b) => a - b);
    for (const b of order) {
      const mine = held.get(b)!;
      while (mine.length < quota.get(b)!) {
        const i = free.shift()!;
        mine.push(i);
        slots[i] = b;
      }
    }
  } else {
    for (const i of free) slots[i] = undefined;
  }
  for (const i of free) slots[i] = undefined;
  const changed: number[] = [];
  for (let i = 0; i < slotCount; i++) if (slots[i] !== current[i]) changed.push(i);
  return { slots, changed };
}
