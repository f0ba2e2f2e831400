// docker cp: HEAD/GET/PUT /containers/{id}/archive, over src/compute/archive.ts (paths resolved inside the
// container's root; a running container is paused for the copy).

import type { FastifyInstance } from 'fastify';
import { finished } from 'node:stream/promises';
import { putArchive, statPath, tarOf, withContainerRoot } from '../../compute/archive.js';
import type { Ctx } from './ctx.js';
import { dockerInvalid } from './errors.js';
import { first, flag, type Query } from './util.js';

type P = { Params: { id: string }; Querystring: Query };
const statHeader = (s: object) => Buffer.from(JSON.stringify(s)).toString('base64');

export function archiveRoutes(app: FastifyInstance, x: Ctx): void {
  const c = x.svc.compute;
  const st = x.svc.storage;
  const pathOf = (q: Query) => {
    const p = first(q.path);
    if (!p) throw dockerInvalid('path is required');
    return p;
  };

  app.head<P>('/containers/:id/archive', async (req, reply) => {
    const r = c.get(req.params.id);
    const { stat } = await withContainerRoot(c, st, r.Id, (v) => statPath(v, pathOf(req.query), req.params.id));
    return reply.status(200).header('X-Docker-Container-Path-Stat', statHeader(stat)).header('Content-Type', 'application/json').send();
  });

  app.get<P>('/containers/:id/archive', async (req, reply) => {
    const r = c.get(req.params.id);
    const p = pathOf(req.query);
    await withContainerRoot(c, st, r.Id, async (v) => {
      const { stat, cpath } = await statPath(v, p, req.params.id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': statHeader(stat), 'Api-Version': '1.50' });
      const t = tarOf(v, cpath);
      t.on('error', () => res.destroy());
      t.pipe(res);
      // The root stays mounted (or the container paused) until the whole tar has been read.
      await finished(res).catch(() => {});
    });
  });

  app.put<P>('/containers/:id/archive', async (req, reply) => {
    const r = c.get(req.params.id);
    const p = pathOf(req.query);
    const body = req.body as AsyncIterable<Uint8Array> | undefined;
    if (!body || typeof (body as any)[Symbol.asyncIterator] !== 'function') throw dockerInvalid('the request body must be a tar archive');
    await withContainerRoot(c, st, r.Id, (v) =>
      putArchive(v, p, body, { noOverwriteDirNonDir: flag(req.query.noOverwriteDirNonDir), ...(flag(req.query.copyUIDGID) ? {} : { owner: { uid: 0, gid: 0 } }) }),
    );
    return reply.status(200).send();
  });
}
