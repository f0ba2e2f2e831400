// Named volumes on the native API (`silo volume`, `silo run -v name:/x`): the storage service's, as the Docker door's.

import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { invalid } from '../../common/errors.js';
import type { Services } from '../../host/services.js';
import { volumeUsers } from '../volume-users.js';

const ANONYMOUS = 'com.docker.volume.anonymous';

function createBody(body: unknown): { name?: string; labels: Record<string, string> } {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'Name' && k !== 'Labels') throw invalid(`unknown field ${k}: a volume takes Name and Labels`);
  if (b.Name !== undefined && (typeof b.Name !== 'string' || !b.Name)) throw invalid('Name must be a volume name');
  const labels = b.Labels ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string')) throw invalid('Labels must map names to strings');
  return { name: b.Name as string | undefined, labels: labels as Record<string, string> };
}

export function volumeRoutes(app: FastifyInstance, svc: Services): void {
  const st = svc.storage;
  const users = (mountpoint: string) => volumeUsers(svc.compute.list(true), mountpoint);
  const view = (v: Awaited<ReturnType<typeof st.getVolume>>) => ({ ...v, Containers: users(v.Mountpoint).length });

  app.get('/v1/volumes', async () => (await st.listVolumes()).map(view));
  app.post('/v1/volumes', async (req, reply) => {
    const b = createBody(req.body);
    // As docker's: creating an existing volume returns it.
    return reply.status(201).send(view(await st.createVolume(b.name ?? randomBytes(32).toString('hex'), { labels: b.labels })));
  });
  app.get('/v1/volumes/:name', async (req) => view(await st.getVolume((req.params as { name: string }).name)));
  app.delete('/v1/volumes/:name', async (req, reply) => {
    const v = await st.getVolume((req.params as { name: string }).name);
    await st.removeVolume(v.Name, { inUseBy: users(v.Mountpoint) });
    return reply.status(204).send();
  });
  // Unused volumes: anonymous ones only unless all=1, as `docker volume prune`.
  app.post('/v1/volumes/prune', async (req) => {
    const all = ['1', 'true'].includes(String((req.query as { all?: string }).all));
    const deleted: string[] = [];
    let space = 0;
    for (const v of await st.listVolumes()) {
      if (users(v.Mountpoint).length || (!all && !(ANONYMOUS in v.Labels))) continue;
      const size = await st.volumeSize(v.Name);
      await st.removeVolume(v.Name).then(() => ((space += size), deleted.push(v.Name)), () => {});
    }
    return { Deleted: deleted, SpaceReclaimed: space };
  });
}
