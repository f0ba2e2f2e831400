// docker cp: HEAD/GET/PUT /containers/{id}/archive, docker export and docker diff, as copies of the compute service (paths resolved inside the
// container's root by its backend).

import type { FastifyInstance } from 'fastify';
import { finished } from 'node:stream/promises';
import type { Ctx } from './ctx.js';
import { dockerInvalid } from './errors.js';
import { first, flag, type Query } from './util.js';

type P = { Params: { id: string }; Querystring: Query };
const statHeader = (s: object) => Buffer.from(JSON.stringify(s)).toString('base64');

export function archiveRoutes(app: FastifyInstance, x: Ctx): void {
  const c = x.svc.compute;
  const pathOf = (q: Query) => {
    const p = first(q.path);
    if (!p) throw dockerInvalid('path is required');
    return p;
  };

  app.head<P>('/containers/:id/archive', async (req, reply) => {
    const { stat } = await c.statPath(req.params.id, pathOf(req.query));
    return reply.status(200).header('X-Docker-Container-Path-Stat', statHeader(stat)).header('Content-Type', 'application/json').send();
  });

  app.get<P>('/containers/:id/archive', async (req, reply) => {
    const p = pathOf(req.query);
    await c.copyOut(req.params.id, p, async (stat, t) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': statHeader(stat), 'Api-Version': '1.50' });
      t.on('error', () => res.destroy());
      t.pipe(res);
      // The root stays as it is (mounted, the copy helper alive) until the whole tar has been read.
      await finished(res).catch(() => {});
    });
  });

  // docker export: the container's own filesystem (no volumes or binds, nothing the runtime mounted), as a tar.
  app.get<P>('/containers/:id/export', async (req, reply) => {
    await c.exportRoot(req.params.id, async (t) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Api-Version': '1.50' });
      t.on('error', () => res.destroy());
      t.pipe(res);
      await finished(res).catch(() => {});
    });
  });

  // docker diff
  app.get<P>('/containers/:id/changes', async (req, reply) => reply.status(200).header('Content-Type', 'application/json').send(JSON.stringify(await c.changes(req.params.id))));

  app.put<P>('/containers/:id/archive', async (req, reply) => {
    const p = pathOf(req.query);
    const body = req.body as AsyncIterable<Uint8Array> | undefined;
    if (!body || typeof (body as any)[Symbol.asyncIterator] !== 'function') throw dockerInvalid('the request body must be a tar archive');
    await c.copyIn(req.params.id, p, body, { noOverwriteDirNonDir: flag(req.query.noOverwriteDirNonDir), ...(flag(req.query.copyUIDGID) ? {} : { owner: { uid: 0, gid: 0 } }) });
    return reply.status(200).send();
  });
}
