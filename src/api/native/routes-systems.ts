import type { FastifyInstance, FastifyReply } from 'fastify';
import { invalid } from '../../common/errors.js';
import type { CreateSystemRequest, ProcessParameters } from '../../compute/types.js';
import type { Services } from '../../host/services.js';
import * as S from './schemas.js';
import { drained, frame } from './stream.js';
import { streamEvents } from '../event-stream.js';
import { diskUsage } from '../disk-usage.js';
import type { DiskUsage } from './wire.js';

type Id = { Params: { id: string } };
const flag = (v: unknown) => v === '1' || v === 'true' || v === true;

export function intQuery(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw invalid(`${name} must be a non-negative integer`);
  return n;
}

export function systemRoutes(app: FastifyInstance, svc: Services): void {
  const c = svc.compute;

  app.get('/v1/version', async () => svc.version());
  app.get('/v1/info', async () => svc.info());
  app.get('/v1/system/df', async (): Promise<DiskUsage> => {
    const u = await diskUsage(svc);
    return {
      LayersSize: u.layersSize,
      Images: u.images.map((i) => ({ Id: i.image.id, Names: i.image.names, Created: i.image.created, Size: i.diskSize, SharedSize: i.sharedSize, Containers: i.containers })),
      Containers: u.containers.map((c) => ({ Id: c.rec.Id, Name: c.rec.Name, Image: c.rec.ImageName, State: c.rec.State, SizeRw: c.sizeRw, SizeRootFs: c.sizeRootFs })),
      Volumes: u.volumes.map((v) => ({ Name: v.volume.Name, Size: v.size, RefCount: v.refCount })),
    };
  });
  app.get('/v1/doctor', async () => svc.doctor(false));
  app.post('/v1/doctor/fix', async () => svc.doctor(true));

  app.get('/v1/events', (req, reply) => {
    const q = req.query as { since?: string; until?: string };
    const since = q.since ? Date.parse(q.since) : undefined;
    if (q.since && Number.isNaN(since)) throw invalid(`invalid since: ${q.since}`);
    const until = q.until ? Date.parse(q.until) : undefined;
    if (q.until && Number.isNaN(until)) throw invalid(`invalid until: ${q.until}`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache' });
    streamEvents(res, svc.events, { since, until }, (e) => JSON.stringify(e) + '\n');
  });

  app.post('/v1/systems', { schema: { body: S.CreateSystem } }, async (req, reply) => {
    const rec = await c.create(req.body as CreateSystemRequest);
    return reply.status(201).send({ Id: rec.Id, Warnings: [] });
  });
  app.get('/v1/systems', async (req) => c.list(flag((req.query as { all?: string }).all)));
  app.get<Id>('/v1/systems/:id', async (req) => c.get(req.params.id));
  app.delete<Id>('/v1/systems/:id', async (req, reply) => {
    await c.remove(req.params.id, { force: flag((req.query as { force?: string }).force) });
    return reply.status(204).send();
  });

  const act = (path: string, fn: (id: string, body: any, query: any) => Promise<unknown>, schema?: object) =>
    app.post<Id>(`/v1/systems/:id/${path}`, schema ? { schema: { body: schema } } : {}, async (req, reply) => {
      const out = await fn(req.params.id, req.body ?? {}, req.query);
      return out === undefined ? reply.status(204).send() : reply.send(out);
    });
  act('start', (id) => c.start(id));
  act('shutdown', (id, b) => c.shutdown(id, b), S.Shutdown);
  act('terminate', (id) => c.terminate(id));
  act('signal', (id, b) => c.signal(id, String(b.Signal)), S.Signal);
  act('pause', (id) => c.pause(id));
  act('resume', (id) => c.resume(id));
  act('modify', (id, b) => c.modify(id, b), S.Modify);
  act('wait', async (id, _b, q) => ({ ExitCode: await c.wait(id, q.condition === 'next-exit' ? 'next-exit' : 'not-running') }));
  act('rename', (id, b) => c.rename(id, b.Name), S.Tag);
  act('resize', (id, _b, q) => c.resize(id, intQuery(q.h, 'h') ?? 24, intQuery(q.w, 'w') ?? 80));
  app.post<Id>('/v1/systems/:id/commit', { schema: { body: S.Commit } }, async (req, reply) => {
    const b = req.body as { Name?: string; Comment?: string; Author?: string; Changes?: string[] };
    const img = await c.commit(req.params.id, { name: b.Name, comment: b.Comment, author: b.Author, changes: b.Changes });
    return reply.status(201).send({ Id: img.id });
  });

  app.get<Id>('/v1/systems/:id/properties', async (req) => {
    const types = String((req.query as { types?: string }).types ?? 'Statistics').split(',').filter(Boolean);
    return c.properties(req.params.id, types);
  });

  app.get<Id>('/v1/systems/:id/logs', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const opts = { follow: flag(q.follow), tail: q.tail === 'all' ? undefined : intQuery(q.tail, 'tail'), since: q.since };
    const ts = flag(q.timestamps);
    c.get(req.params.id); // 404 before the stream starts
    return streamOut(reply, 'application/vnd.silo.multiplexed-stream', async (write, signal) => {
      await c.logs(req.params.id, opts, (e) => {
        const data = ts ? Buffer.concat([Buffer.from(e.time + ' '), e.data]) : e.data;
        return write(frame(e.stream === 'stderr' ? 2 : 1, data));
      }, signal);
    });
  });

  app.post<Id>('/v1/systems/:id/processes', { schema: { body: S.Exec } }, async (req, reply) => {
    const x = c.execs.create(req.params.id, req.body as ProcessParameters);
    return reply.status(201).send({ Id: x.Id });
  });
  app.get<Id>('/v1/processes/:id', async (req) => c.execs.get(req.params.id));
  app.post<Id>('/v1/processes/:id/resize', async (req, reply) => {
    const q = req.query as Record<string, string>;
    await c.execs.resize(req.params.id, intQuery(q.h, 'h') ?? 24, intQuery(q.w, 'w') ?? 80);
    return reply.status(204).send();
  });
  // Detached start; the attached one is an upgrade (routes-upgrade.ts).
  app.post<Id>('/v1/processes/:id/start', async (req, reply) => {
    await c.execs.start(req.params.id);
    return reply.status(204).send();
  });
}

/** A long response written as the work produces it; the work's signal aborts when the client goes away. */
export function streamOut(reply: FastifyReply, type: string, work: (write: (b: Buffer) => void | Promise<void>, signal: AbortSignal) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'Content-Type': type });
  res.on('close', () => ac.abort());
  // A write the socket cannot take yet returns a promise of its drain: a producer that awaits it is held back.
  const write = (b: Buffer) => (res.write(b) ? undefined : drained(res, ac.signal));
  return work(write, ac.signal).then(
    () => void res.end(),
    (e) => {
      res.destroy(e as Error);
    },
  );
}

