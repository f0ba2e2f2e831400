// The Docker door's registry routes: pull (POST /images/create?fromImage=), push, login (/auth) and
// /distribution/{name}/json. Progress goes out as docker's JSON messages — status, id, progressDetail and the
// preformatted bar — which the unmodified CLI draws per layer. The stream starts with the first message, so an
// unknown image or a refused login is still an HTTP error the CLI acts on (run's 404 → pull flow needs that).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { invalid, isSiloError } from '../../common/errors.js';
import { familiarName, formatReference, normalizeName, parseReference } from '../../storage/reference.js';
import type { ProgressMessage } from '../../storage/registry/progress.js';
import type { Credentials } from '../../storage/registry/credentials.js';
import { parsePlatform } from '../../storage/registry/media.js';
import type { Ctx } from './ctx.js';
import { DockerError, dockerInvalid, streamError, toDockerError } from './errors.js';
import { first, sendJson, type Query } from './util.js';
import { AuthConfig, parseBody } from './schemas.js';

/** X-Registry-Auth: base64url(JSON {username, password, serveraddress, identitytoken}); "e30=" is {}. */
export function registryAuth(req: FastifyRequest): Credentials | undefined {
  const h = req.headers['x-registry-auth'];
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  let doc: { username?: unknown; password?: unknown; identitytoken?: unknown };
  try {
    doc = JSON.parse(Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
  } catch {
    throw dockerInvalid('invalid X-Registry-Auth header: not base64-encoded JSON');
  }
  if (!doc || typeof doc !== 'object') return undefined;
  const username = typeof doc.username === 'string' ? doc.username : '';
  const password = typeof doc.password === 'string' ? doc.password : '';
  const identityToken = typeof doc.identitytoken === 'string' && doc.identitytoken ? doc.identitytoken : undefined;
  if (!username && !password && !identityToken) return undefined;
  return { username, password, ...(identityToken ? { identityToken } : {}) };
}

/** "[=====>      ]  1.2MB/4.5MB", as moby's JSONProgress draws it (for clients that print `progress`). */
function bar(current: number, total: number): string {
  const units = (n: number) => (n < 1000 ? `${n}B` : n < 1e6 ? `${(n / 1e3).toFixed(1)}kB` : n < 1e9 ? `${(n / 1e6).toFixed(1)}MB` : `${(n / 1e9).toFixed(2)}GB`);
  if (total <= 0) return units(current);
  const w = 50;
  const done = Math.min(w, Math.floor((current / total) * w));
  const arrow = done < w ? '>' : '';
  return `[${'='.repeat(Math.max(0, done - (arrow ? 1 : 0)))}${arrow}${' '.repeat(w - done)}] ${units(current).padStart(7)}/${units(total)}`;
}

export function dockerMessage(m: ProgressMessage): Record<string, unknown> {
  if (m.aux) return { progressDetail: {}, aux: m.aux };
  const o: Record<string, unknown> = { status: m.status };
  if (m.current !== undefined) {
    o.progressDetail = { current: m.current, total: m.total };
    o.progress = bar(m.current, m.total ?? 0);
  }
  if (m.id !== undefined) o.id = m.id;
  return o;
}

/** Run a streamed operation: errors before its first message are statuses; after, an in-band errorDetail line. */
async function streamed(reply: FastifyReply, op: (note: (m: ProgressMessage) => void) => Promise<void>): Promise<void> {
  let on = false;
  const write = (o: unknown) => {
    if (!on) {
      on = true;
      reply.hijack();
      reply.raw.writeHead(200, { 'Content-Type': 'application/json' });
    }
    reply.raw.write(JSON.stringify(o) + '\r\n');
  };
  try {
    await op((m) => write(dockerMessage(m)));
  } catch (e) {
    if (!on) throw e;
    reply.raw.write(streamError(e));
  }
  reply.raw.end();
}

/** docker's wording for a pull that found nothing (the CLI and scripts key on "pull access denied" / "not found"). */
function pullError(e: unknown, ref: string): unknown {
  if (!isSiloError(e)) return e;
  if (e.class === 'NotFound' || e.class === 'Unauthenticated') {
    const r = parseReference(ref);
    const repo = familiarName(formatReference({ ...r, tag: undefined, digest: undefined }));
    if (/manifest .* not found/.test(e.message)) return new DockerError(404, `manifest for ${familiarName(formatReference(r))} not found: manifest unknown: manifest unknown`);
    if (/access denied/.test(e.message)) return new DockerError(404, `pull access denied for ${repo}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
  }
  return e;
}

export async function pullRoute(x: Ctx, req: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply, from: string): Promise<void> {
  const q = req.query;
  const tag = first(q.tag);
  const ref = tag ? (tag.startsWith('sha256:') ? `${from}@${tag}` : `${from}:${tag}`) : from;
  normalizeName(ref); // a bad reference is a 400 before anything else
  const p = first(q.platform);
  const platform = p ? parsePlatform(p) : undefined;
  const auth = registryAuth(req);
  // As moby: a name without tag or digest and no tag parameter means every tag (docker pull --all-tags sends that).
  const r = parseReference(from);
  const allTags = !tag && !r.digest && !/:[^/]+$/.test(from);
  await streamed(reply, async (note) => {
    try {
      const imgs = allTags ? await x.svc.registry.pullAllTags(from, { platform, auth, progress: note }) : [await x.svc.registry.pull(ref, { platform, auth, progress: note })];
      for (const img of imgs) x.svc.events.publish('image', 'pull', img.id, { name: familiarName(img.names[0] ?? normalizeName(ref)) });
    } catch (e) {
      throw pullError(e, ref);
    }
  });
}

export async function pushRoute(x: Ctx, req: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply, name: string): Promise<void> {
  const tag = first(req.query.tag);
  // As moby: the tag parameter replaces a tag the name already has (dockerode sends both); a name without a tag and
  // no tag parameter is every local tag of the repository (docker push --all-tags sends that).
  const ref = tag ? formatReference({ ...parseReference(name), tag, digest: undefined }) : name;
  const allTags = !tag && !/:[^/]+$/.test(name) && !parseReference(name).digest;
  const refs = allTags ? await x.svc.registry.localTags(name, () => x.svc.storage.listImages()) : [normalizeName(ref)];
  const missing = () => new DockerError(404, `An image does not exist locally with the tag: ${familiarName(normalizeName(ref)).replace(/:latest$/, '')}`);
  if (!refs.length) throw missing();
  try {
    for (const one of refs) await x.svc.storage.getImage(one);
  } catch (e) {
    if (isSiloError(e) && e.class === 'NotFound') throw missing();
    throw e;
  }
  const auth = registryAuth(req);
  await streamed(reply, async (note) => {
    for (const one of refs) {
      const done = await x.svc.registry.push(one, { auth, progress: note });
      x.svc.events.publish('image', 'push', done.digest, { name: familiarName(one) });
    }
  });
}

/** POST /auth: check credentials against the registry; the docker CLI keeps them itself, so nothing is saved. */
export async function authRoute(x: Ctx, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const b = parseBody(AuthConfig, req.body);
  if (typeof b.username !== 'string' || typeof b.password !== 'string') throw dockerInvalid('username and password are required');
  const server = typeof b.serveraddress === 'string' ? b.serveraddress : undefined;
  try {
    const r = await x.svc.registry.login(server, { username: b.username, password: b.password }, false);
    return sendJson(reply, 200, { Status: r.status, IdentityToken: '' });
  } catch (e) {
    if (isSiloError(e) && e.class === 'Unauthenticated') throw new DockerError(401, e.message);
    throw e;
  }
}

/** GET /distribution/{name}/json: the descriptor the registry gives for a reference, and its platforms. */
export async function distributionRoute(x: Ctx, req: FastifyRequest, reply: FastifyReply, name: string): Promise<void> {
  try {
    const r = await x.svc.registry.resolve(name, { auth: registryAuth(req) });
    return sendJson(reply, 200, { Descriptor: r.descriptor, Platforms: r.platforms });
  } catch (e) {
    const d = pullError(e, name);
    if (d instanceof DockerError) throw d;
    throw isSiloError(d) && d.class === 'InvalidArgument' ? invalid(d.message) : d;
  }
}

export { toDockerError };

export function registryRoutes(app: import('fastify').FastifyInstance, x: Ctx): void {
  app.post('/auth', (req, reply) => authRoute(x, req, reply));
  app.get<{ Params: { '*': string } }>('/distribution/*', async (req, reply) => {
    const m = /^(.+)\/json$/.exec(req.params['*']);
    if (!m) throw new DockerError(404, 'page not found');
    return distributionRoute(x, req, reply, m[1]);
  });
  // docker search asks an index Silo does not run: say so in one line.
  app.get('/images/search', async () => {
    throw new DockerError(501, 'Silo does not support searching registries (docker search): browse the registry instead');
  });
}
