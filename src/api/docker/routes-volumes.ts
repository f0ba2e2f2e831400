// Named volumes (the storage service's, src/storage/volumes.ts) mapped onto docker's wire, and the prune endpoints `docker system prune` walks through in order.

import type { FastifyInstance } from 'fastify';
import type { Ctx } from './ctx.js';
import { boolFilter, filters, labelMatch, labelsAndUntil, sendJson, type Query } from './util.js';
import { parseBody, VolumeCreate } from './schemas.js';
import { volumeUsers } from '../volume-users.js';

type P = { Params: { name: string }; Querystring: Query };

export function volumeRoutes(app: FastifyInstance, x: Ctx): void {
  const st = x.svc.storage;
  // By the volume's path in every container (src/api/volume-users.ts): one the native door made counts too.
  const users = (name: string) => volumeUsers(x.svc.compute.list(true), st.volumePath(name));

  app.get<{ Querystring: Query }>('/volumes', async (req, reply) => {
    const f = filters(req.query, ['dangling', 'driver', 'label', 'name']);
    const dangling = boolFilter(f, 'dangling');
    let list = await st.listVolumes();
    const drivers = f.get('driver');
    if (drivers) list = list.filter((v) => drivers.includes(v.Driver));
    const names = f.get('name');
    if (names) list = list.filter((v) => names.some((n) => v.Name.includes(n)));
    const labels = f.get('label');
    if (labels) list = list.filter((v) => labelMatch(v.Labels, labels));
    if (dangling !== undefined) list = list.filter((v) => (users(v.Name).length === 0) === dangling);
    return sendJson(reply, 200, { Volumes: list, Warnings: [] });
  });

  app.post('/volumes/create', async (req, reply) => {
    const b = parseBody(VolumeCreate, req.body);
    const name = b.Name ? String(b.Name) : (await import('node:crypto')).randomBytes(32).toString('hex');
    if (b.Driver && b.Driver !== 'local') throw Object.assign(new Error(`plugin "${b.Driver}" not found`), { statusCode: 404 });
    return sendJson(reply, 201, await st.createVolume(name, { labels: b.Labels ?? {}, options: b.DriverOpts ?? {} }));
  });

  app.get<P>('/volumes/:name', async (req, reply) => sendJson(reply, 200, await st.getVolume(req.params.name)));

  app.delete<P>('/volumes/:name', async (req, reply) => {
    await st.removeVolume(req.params.name, { inUseBy: users(req.params.name) });
    return reply.status(204).send();
  });

  app.post<{ Querystring: Query }>('/volumes/prune', async (req, reply) => {
    // dockerd takes no until here: a volume's age says nothing of whether its data is still wanted.
    const f = filters(req.query, ['all', 'label', 'label!']);
    const everything = ['true', '1'].includes(f.get('all')?.[0] ?? '');
    const keep = labelsAndUntil(f, (v: { Labels: Record<string, string>; CreatedAt: string }) => ({ labels: v.Labels, created: v.CreatedAt }));
    const deleted: string[] = [];
    let space = 0;
    for (const v of await st.listVolumes()) {
      if (users(v.Name).length) continue;
      if ((!everything && !('com.docker.volume.anonymous' in v.Labels)) || !keep(v)) continue;
      space += await st.volumeSize(v.Name);
      await st.removeVolume(v.Name).then(() => deleted.push(v.Name), () => {});
    }
    return sendJson(reply, 200, { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: space });
  });
}

export function pruneRoutes(app: FastifyInstance, x: Ctx): void {
  // A 404 here would fail the whole `docker system prune`, which passes its own filters on. They cannot narrow what
  // this drops: only cache entries naming images already removed (the intermediate images are image prune's).
  app.post('/build/prune', async (_req, reply) => {
    await x.cache.prune((id) => x.svc.storage.getImage(id).then(() => true, () => false));
    return sendJson(reply, 200, { CachesDeleted: null, SpaceReclaimed: 0 });
  });
}
