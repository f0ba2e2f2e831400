// Registry operations on the native API: pull and push stream one JSON progress message per line (the first line
// is written only once the registry has answered, so an unknown image or refused login is still an error status),
// login checks and saves credentials, logout forgets them.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { invalid, notFound } from '../../common/errors.js';
import type { Services } from '../../host/services.js';
import type { ProgressMessage } from '../../storage/registry/progress.js';
import { parsePlatform } from '../../storage/registry/media.js';
import type { Credentials } from '../../storage/registry/credentials.js';
import { toHttpError } from './errors.js';

type Q = { Querystring: { ref?: string; platform?: string } };

/** A lazily started NDJSON stream: headers go out with the first message. */
export function lazyLines(reply: FastifyReply): { write: (o: unknown) => void; started: () => boolean; end: () => void } {
  let on = false;
  return {
    write: (o) => {
      if (!on) {
        on = true;
        reply.hijack();
        reply.raw.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      }
      reply.raw.write(JSON.stringify(o) + '\n');
    },
    started: () => on,
    end: () => reply.raw.end(),
  };
}

function credsOf(body: unknown): Credentials | undefined {
  const b = body as { Username?: unknown; Password?: unknown } | undefined;
  if (!b || typeof b !== 'object') return undefined;
  if (b.Username === undefined && b.Password === undefined) return undefined;
  if (typeof b.Username !== 'string' || typeof b.Password !== 'string') throw invalid('Username and Password must be strings');
  return { username: b.Username, password: b.Password };
}

/** Run a streamed registry operation: errors before the first line are statuses, after it an in-band error line. */
async function streamed(reply: FastifyReply, op: (note: (m: ProgressMessage) => void) => Promise<unknown>): Promise<void> {
  const out = lazyLines(reply);
  try {
    const result = await op((m) => out.write(m));
    out.write({ result });
  } catch (e) {
    if (!out.started()) throw e;
    out.write({ error: toHttpError(e).body.message });
  }
  out.end();
}

export function registryRoutes(app: FastifyInstance, svc: Services): void {
  const reg = () => svc.registry;

  app.post<{ Querystring: { ref?: string; platform?: string; allTags?: string } }>('/v1/images/pull', async (req, reply) => {
    const ref = req.query.ref;
    if (!ref) throw invalid('ref is required');
    const platform = req.query.platform ? parsePlatform(req.query.platform) : undefined;
    const auth = credsOf(req.body);
    const all = ['1', 'true'].includes(String(req.query.allTags));
    await streamed(reply, async (note) => {
      const imgs = all ? await reg().pullAllTags(ref, { platform, auth, progress: note }) : [await reg().pull(ref, { platform, auth, progress: note })];
      for (const img of imgs) svc.events.publish('image', 'pull', img.id, { name: img.names[0] ?? ref });
      return all ? imgs : imgs[0];
    });
  });

  app.post<{ Querystring: { ref?: string; allTags?: string } }>('/v1/images/push', async (req, reply) => {
    const ref = req.query.ref;
    if (!ref) throw invalid('ref is required');
    const auth = credsOf(req.body);
    const all = ['1', 'true'].includes(String(req.query.allTags));
    const refs = all ? await reg().localTags(ref, () => svc.storage.listImages()) : [ref];
    if (!refs.length) throw notFound('image', ref);
    await streamed(reply, async (note) => {
      const out = [];
      for (const one of refs) {
        const r = await reg().push(one, { auth, progress: note });
        svc.events.publish('image', 'push', r.digest, { name: one });
        out.push(r);
      }
      return all ? out : out[0];
    });
  });

  app.post('/v1/auth', async (req) => {
    const b = (req.body ?? {}) as { Server?: unknown };
    if (b.Server !== undefined && typeof b.Server !== 'string') throw invalid('Server must be a string');
    const c = credsOf(req.body);
    if (!c) throw invalid('Username and Password are required');
    const r = await reg().login(b.Server as string | undefined, c, true);
    return { Status: r.status };
  });

  app.delete<{ Querystring: { server?: string } }>('/v1/auth', async (req) => ({ Removed: await reg().logout(req.query.server) }));
}
