// The network service's leaks: namespaces named with its prefix that no namespace object has, and links whose
// owner alias carries its prefix but names no network or endpoint it has. For `silo doctor`.

import { run } from '../common/exec.js';
import type { Finding } from '../common/leaks.js';
import type { Ctx } from './context.js';

/** `pooled`: the endpoint pool's objects, made ahead for the next creates and owned by the service. */
export async function networkLeaks(ctx: Ctx, pooled: { namespaces: string[]; endpoints: string[] } = { namespaces: [], endpoints: [] }): Promise<Finding[]> {
  const out: Finding[] = [];
  const namespaces = new Set([...[...ctx.namespaces.values()].map((n) => n.Name), ...pooled.namespaces]);
  for (const line of (await run('ip', ['netns', 'list'], { allowFail: true })).stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(`${ctx.prefix}-`) && !namespaces.has(name)) out.push({ Kind: 'netns', Object: name, Why: 'no such namespace object', Owner: 'network' });
  }
  const owned = new Set([...[...ctx.networks.values()].map((n) => n.Id), ...[...ctx.endpoints.values()].map((e) => e.Id), ...pooled.endpoints]);
  const links = JSON.parse((await run('ip', ['-j', 'link', 'show'], { allowFail: true })).stdout || '[]') as { ifname: string; ifalias?: string }[];
  for (const l of links) {
    const parts = (l.ifalias ?? '').split(':');
    if (parts[0] !== 'silo' || parts[1] !== ctx.prefix) continue;
    if (!owned.has(parts[3] ?? '')) {
      out.push({ Kind: 'link', Object: l.ifname, Why: `${parts[2] === 'br' ? 'network' : 'endpoint'} ${String(parts[3]).slice(0, 12)} does not exist`, Owner: 'network' });
    }
  }
  return out;
}
