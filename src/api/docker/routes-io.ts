// Streams out of a container: logs, stats, top, and attach for clients that do not upgrade.

import { DockerError } from './errors.js';
import type { FastifyInstance } from 'fastify';
import type { ComputeSystemRecord } from '../../compute/types.js';
import { frame } from '../native/stream.js';
import { drained } from '../native/stream.js';
import type { Ctx } from './ctx.js';
import { dockerConflict, dockerInvalid } from './errors.js';
import { responseClient } from './hijack.js';
import { statsJson } from './stats.js';
import { defaultTop, hostTop } from './top.js';
import { first, flag, sendJson, type Query } from './util.js';

type P = { Params: { id: string }; Querystring: Query };
const active = (r: ComputeSystemRecord) => r.State === 'Running' || r.State === 'Paused';

/** Docker's since/until: unix seconds with optional fraction, or an RFC3339 time. */
function timeArg(v: string | undefined, name: string): string | undefined {
  if (!v || v === '0') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return new Date(Number(v) * 1000).toISOString();
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw dockerInvalid(`invalid value for ${name}: ${v}`);
  return new Date(t).toISOString();
}

export function ioRoutes(app: FastifyInstance, x: Ctx): void {
  const c = x.svc.compute;

  app.get<P>('/containers/:id/logs', async (req, reply) => {
    const q = req.query;
    const r = c.get(req.params.id);
    if (r.Document.Container.Logging?.Driver === 'none') throw new DockerError(501, 'configured logging driver does not support reading');
    const out = flag(q.stdout);
    const err = flag(q.stderr);
    if (!out && !err) throw dockerInvalid('Bad parameters: you must choose at least one stream');
    const tail = first(q.tail);
    const n = tail === undefined || tail === 'all' || tail === '' ? undefined : Number(tail);
    if (n !== undefined && !Number.isInteger(n)) throw dockerInvalid(`invalid value for tail: ${tail}`);
    const since = timeArg(first(q.since), 'since');
    const until = timeArg(first(q.until), 'until');
    const ts = flag(q.timestamps);
    const tty = r.Init.Tty;
    const ac = new AbortController();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
    res.flushHeaders();
    res.on('close', () => ac.abort());
    let timer: NodeJS.Timeout | undefined;
    if (until && flag(q.follow)) timer = setTimeout(() => ac.abort(), Math.max(0, Date.parse(until) - Date.now()));
    try {
      await c.logs(r.Id, { follow: flag(q.follow), ...(n !== undefined && n >= 0 ? { tail: n } : {}), ...(since ? { since } : {}) }, (e) => {
        if ((e.stream === 'stdout' && !out) || (e.stream === 'stderr' && !err)) return;
        if (until && e.time > until) return;
        const data = ts ? Buffer.concat([Buffer.from(e.time + ' '), e.data]) : e.data;
        // A slow client holds the reader back (drain) instead of the daemon buffering the log for it.
        if (!res.write(tty ? data : frame(e.stream === 'stderr' ? 2 : 1, data))) return drained(res, ac.signal);
      }, ac.signal);
    } catch (e) {
      if (!ac.signal.aborted) x.svc.log.warn({ door: 'docker', id: r.Id, err: (e as Error).message }, 'log stream failed');
    } finally {
      clearTimeout(timer);
      res.end();
    }
  });

  app.get<P>('/containers/:id/top', async (req, reply) => {
    const r = c.get(req.params.id);
    if (!active(r)) throw dockerConflict(`container ${r.Id} is not running`);
    const { ProcessList = [] } = await c.properties(r.Id, ['ProcessList']);
    // The CLI sends no ps_args without options (dockerd's default is -ef, which the default listing is).
    const psArgs = (first(req.query.ps_args) ?? '').trim();
    if (!psArgs || psArgs === '-ef') return sendJson(reply, 200, defaultTop(ProcessList));
    if (r.Document.Isolation === 'vm') throw dockerInvalid("docker top with ps options is not supported by Silo for a VM-isolated container: its processes are in the guest, out of the host's ps's sight");
    return sendJson(reply, 200, await hostTop(psArgs, ProcessList.map((p) => p.pid)));
  });

  app.get<P>('/containers/:id/stats', async (req, reply) => {
    const r = c.get(req.params.id);
    const stream = first(req.query.stream) === undefined ? true : flag(req.query.stream);
    const oneShot = flag(req.query['one-shot']);
    if (!stream) {
      if (!active(r)) return sendJson(reply, 200, statsJson(r, undefined, undefined));
      const { cur, prev } = oneShot ? { cur: await x.stats.sample(r), prev: undefined } : await x.stats.pair(r);
      return sendJson(reply, 200, statsJson(r, cur, prev));
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    let closed = false;
    res.on('close', () => (closed = true));
    let prev = active(r) ? await x.stats.sample(r) : undefined;
    while (!closed) {
      const now = (() => {
        try {
          return c.get(r.Id);
        } catch {
          return undefined;
        }
      })();
      if (!now) break;
      const cur = active(now) ? await x.stats.sample(now) : undefined;
      res.write(JSON.stringify(statsJson(now, cur, prev)) + '\n');
      prev = cur;
      await new Promise((done) => setTimeout(done, 1000));
    }
    res.end();
  });

  // Attach without Upgrade (dockerode's default): the output as a plain streamed response.
  app.post<P>('/containers/:id/attach', async (req, reply) => {
    const r = c.get(req.params.id);
    if (!flag(req.query.stream)) return reply.status(200).send();
    reply.hijack();
    await c.attach(r.Id, responseClient(reply.raw, r.Init.Tty));
  });
}
