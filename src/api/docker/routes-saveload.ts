// docker save / docker load through the storage service's archive export and load.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { familiarName } from '../../storage/reference.js';
import type { Ctx } from './ctx.js';
import { dockerInvalid, streamError } from './errors.js';
import { imageOf } from './image-lookup.js';
import { jsonStream } from './util.js';
import { all, type Query } from './util.js';

/** Stream the archive of `refs`; every name is checked (404 as docker) before the 200 goes out. */
export async function sendSave(x: Ctx, reply: FastifyReply, refs: string[]): Promise<void> {
  if (!refs.length) throw dockerInvalid('no images given');
  for (const r of refs) await imageOf(x, r);
  const body = await x.svc.storage.exportImages(refs);
  for (const r of refs) x.svc.events.publish('image', 'save', (await imageOf(x, r)).id, { name: r });
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'Content-Type': 'application/x-tar' });
  body.on('error', (e) => {
    x.svc.log.warn({ door: 'docker', err: (e as Error).message }, 'image save stream failed');
    res.destroy();
  });
  body.pipe(res);
}

export function saveLoadRoutes(app: FastifyInstance, x: Ctx): void {
  app.get<{ Querystring: Query }>('/images/get', async (req, reply) => sendSave(x, reply, all(req.query.names)));

  app.post<{ Querystring: Query }>('/images/load', async (req, reply) => {
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof body.pipe !== 'function') throw dockerInvalid('load needs an image archive as the request body');
    const write = jsonStream(reply);
    try {
      const r = await x.svc.storage.loadImages(body);
      for (const n of r.names) write({ stream: `Loaded image: ${familiarName(n)}\n` });
      for (const i of r.images) {
        x.svc.events.publish('image', 'load', i.id, { name: i.names[0] ? familiarName(i.names[0]) : i.id });
        if (!i.names.length || !r.names.some((n) => i.names.includes(n))) write({ stream: `Loaded image ID: ${i.id}\n` });
      }
    } catch (e) {
      reply.raw.write(streamError(e));
    }
    reply.raw.end();
  });
}
