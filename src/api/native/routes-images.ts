import type { FastifyInstance } from 'fastify';
import { invalid } from '../../common/errors.js';
import type { Services } from '../../host/services.js';
import * as S from './schemas.js';

type Ref = { Params: { ref: string } };
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

export function imageRoutes(app: FastifyInstance, svc: Services): void {
  const st = svc.storage;
  app.get('/v1/images', async () => st.listImages());
  app.get<Ref>('/v1/images/:ref', async (req) => st.getImage(req.params.ref));
  app.get('/v1/layers', async () => st.listLayers());

  app.post('/v1/images/import', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof (body as NodeJS.ReadableStream).pipe !== 'function') {
      throw invalid('import needs a tar archive as the body, with Content-Type application/x-tar');
    }
    const img = await st.importImage(body, {
      name: q.name === undefined || q.name === '' ? undefined : String(q.name),
      changes: list(q.change),
      comment: q.comment === undefined ? undefined : String(q.comment),
    });
    svc.events.publish('image', 'import', img.id, { name: img.names[0] ?? '' });
    return reply.status(201).send(img);
  });

  // Save: one tar of the named images (docker-archive + OCI layout, or with format=oci the OCI layout alone).
  app.get('/v1/images/save', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const names = list(q.name);
    if (!names.length) throw invalid('name is required (one or more images)');
    const format = q.format === undefined ? 'docker' : String(q.format);
    if (format !== 'docker' && format !== 'oci') throw invalid(`unknown archive format "${format}": docker or oci`);
    for (const n of names) await st.getImage(n); // a typo is a 404 before any byte goes out
    const body = await st.exportImages(names, { format });
    reply.hijack();
    reply.raw.writeHead(200, { 'Content-Type': 'application/x-tar' });
    body.on('error', (e) => {
      svc.log.warn({ door: 'native', err: (e as Error).message }, 'image save stream failed');
      reply.raw.destroy();
    });
    body.pipe(reply.raw);
  });

  app.post('/v1/images/load', async (req, reply) => {
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof body.pipe !== 'function') throw invalid('load needs a tar archive as the body, with Content-Type application/x-tar');
    const r = await st.loadImages(body);
    for (const i of r.images) svc.events.publish('image', 'load', i.id, { name: i.names[0] ?? '' });
    return reply.status(200).send({ Images: r.images, Names: r.names });
  });

  app.post<Ref>('/v1/images/:ref/tag', { schema: { body: S.Tag } }, async (req, reply) => {
    const img = await st.tagImage(req.params.ref, (req.body as { Name: string }).Name);
    svc.events.publish('image', 'tag', img.id, { name: (req.body as { Name: string }).Name });
    return reply.status(201).send(img);
  });

  app.post('/v1/images/prune', async (req) => {
    const all = ['1', 'true'].includes(String((req.query as { all?: string }).all));
    const r = await st.pruneImages({ all, inUse: (id) => svc.compute.imageInUse(id) });
    for (const d of r.deleted) svc.events.publish('image', 'delete', d);
    return { Deleted: r.deleted, Untagged: r.untagged, LayersDeleted: r.layers, BlobsDeleted: r.blobs, SpaceReclaimed: r.spaceReclaimed };
  });

  app.delete<Ref>('/v1/images/:ref', async (req) => {
    const force = ['1', 'true'].includes(String((req.query as { force?: string }).force));
    const r = await st.removeImage(req.params.ref, { force, inUse: (id) => svc.compute.imageInUse(id) });
    for (const n of r.untagged) svc.events.publish('image', 'untag', n);
    for (const d of r.deleted) svc.events.publish('image', 'delete', d);
    return { Untagged: r.untagged, Deleted: r.deleted };
  });
}
