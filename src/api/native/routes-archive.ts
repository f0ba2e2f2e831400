// `silo cp`, `silo export` and `silo diff`: copies into and out of a system's root, and its changes, through the compute service (paths resolved
// inside the container's root by its backend), the native twin of docker's /containers/{id}/archive and export.

import type { FastifyInstance } from 'fastify';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { invalid } from '../../common/errors.js';
import type { Services } from '../../host/services.js';

type Q = Record<string, string | undefined>;
type P = { Params: { id: string }; Querystring: Q };

/** The header a copy's stat travels in: base64 JSON of PathStat, as docker's X-Docker-Container-Path-Stat. */
export const PATH_STAT_HEADER = 'X-Silo-Path-Stat';
const statHeader = (s: object) => Buffer.from(JSON.stringify(s)).toString('base64');
const flag = (v: string | undefined) => v === '1' || v === 'true';

export function archiveRoutes(app: FastifyInstance, svc: Services): void {
  const c = svc.compute;
  const pathOf = (q: Q) => {
    if (!q.path) throw invalid('path is required: the path in the container');
    return q.path;
  };
  /** The tar as the answer's body; the root stays as it is until the client has read it all (or gone). */
  const sendTar = async (reply: import('fastify').FastifyReply, t: Readable, headers: Record<string, string>) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/x-tar', ...headers });
    t.on('error', () => res.destroy());
    t.pipe(res);
    await finished(res).catch(() => {});
  };

  app.head<P>('/v1/systems/:id/archive', async (req, reply) => {
    const { stat } = await c.statPath(req.params.id, pathOf(req.query));
    return reply.status(200).header(PATH_STAT_HEADER, statHeader(stat)).send();
  });

  app.get<P>('/v1/systems/:id/archive', async (req, reply) => {
    await c.copyOut(req.params.id, pathOf(req.query), (stat, t) => sendTar(reply, t, { [PATH_STAT_HEADER]: statHeader(stat) }));
  });

  app.put<P>('/v1/systems/:id/archive', async (req, reply) => {
    const p = pathOf(req.query);
    const body = req.body as AsyncIterable<Uint8Array> | undefined;
    if (!body || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function') throw invalid('the request body must be a tar archive (Content-Type application/x-tar)');
    // Owned by root unless the archive's owners are asked for (cp -a), as docker does.
    await c.copyIn(req.params.id, p, body, { noOverwriteDirNonDir: flag(req.query.noOverwriteDirNonDir), ...(flag(req.query.copyUIDGID) ? {} : { owner: { uid: 0, gid: 0 } }) });
    return reply.status(200).send();
  });

  // What the container changed in its image's files (`silo diff`): [{Path, Kind: 0 changed | 1 added | 2 deleted}].
  app.get<P>('/v1/systems/:id/changes', async (req) => c.changes(req.params.id));

  // The container's own filesystem (no binds or volumes, nothing the runtime mounted), as a tar.
  app.get<P>('/v1/systems/:id/export', async (req, reply) => {
    await c.exportRoot(req.params.id, (t) => sendTar(reply, t, {}));
  });
}
