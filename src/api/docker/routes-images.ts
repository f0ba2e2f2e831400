// Images: list, inspect, history, tag, rmi, import and pull (/images/create), prune. Names may contain slashes,
// and the CLI does not escape them, so /images/* is dispatched on its last path segment.

import type { FastifyInstance } from 'fastify';
import { shortId } from '../../common/ids.js';
import { familiarName, normalizeName } from '../../storage/reference.js';
import type { Image } from '../../storage/types.js';
import type { Ctx } from './ctx.js';
import { DockerError, dockerConflict, dockerInvalid, streamError } from './errors.js';
import { imageHistory, imageInspect, imageSummary } from './images-view.js';
import { sendSave } from './routes-saveload.js';
import { pullRoute, pushRoute } from './routes-registry.js';
import { imageOf } from './image-lookup.js';
import { imagesOnDisk } from '../disk-usage.js';
import { all, boolFilter, filters, first, flag, jsonStream, labelMatch, labelsAndUntil, sendJson, type Query } from './util.js';

type W = { Params: { '*': string }; Querystring: Query };

/** `docker images busybox` / `reference=bus*`: glob on the familiar repository[:tag]. */
/**
 * docker's reference filter (moby's FamiliarMatch, Go's path.Match): a pattern matches a name's familiar form or that
 * form without its tag or digest; `*` and `?` never cross a '/', so a registry host with a port is matched like any
 * other path component. The names that match are the ones listed (moby lists only those in RepoTags/RepoDigests).
 */
function refMatcher(pats: string[]): (name: string) => boolean {
  const res = pats.map((p) => {
    try {
      return new RegExp('^' + p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
    } catch {
      throw dockerInvalid(`invalid reference filter "${p}": syntax error in pattern`);
    }
  });
  return (name) => {
    const n = familiarName(name);
    const bare = n.includes('@') ? n.slice(0, n.indexOf('@')) : n.replace(/:[^:/]*$/, '');
    return res.some((r) => r.test(n) || r.test(bare));
  };
}

/** Is `c` built on `p`: the same layers and history, and more of them? */
function isChildOf(c: Image, p: Image): boolean {
  if (c.id === p.id || c.history.length <= p.history.length || c.layers.length < p.layers.length) return false;
  return p.layers.every((l, i) => c.layers[i] === l) && p.history.every((h, i) => c.history[i].created === h.created && c.history[i].created_by === h.created_by);
}

export function imageRoutes(app: FastifyInstance, x: Ctx): void {
  const st = x.svc.storage;

  app.get<{ Querystring: Query }>('/images/json', async (req, reply) => {
    const f = filters(req.query, ['reference', 'dangling', 'label', 'before', 'since', 'until']);
    if (f.has('until')) throw dockerInvalid('the until filter of image lists is not supported by Silo');
    let imgs = await st.listImages();
    // Like docker, untagged images that are the parents of others (build steps) show only with -a.
    if (!flag(req.query.all)) imgs = imgs.filter((i) => i.names.length > 0 || !imgs.some((o) => isChildOf(o, i)));
    const ref = [...(f.get('reference') ?? []), ...all(req.query.filter)];
    if (ref.length) {
      const m = refMatcher(ref);
      imgs = imgs.flatMap((i) => (i.names.some(m) ? [{ ...i, names: i.names.filter(m) }] : []));
    }
    const dangling = f.get('dangling');
    if (dangling) imgs = imgs.filter((i) => (i.names.length === 0) === (dangling[0] === 'true' || dangling[0] === '1'));
    const labels = f.get('label');
    if (labels) imgs = imgs.filter((i) => labelMatch(i.config.Labels, labels));
    // before=/since= an image: made strictly earlier / later than it, as docker compares creation times.
    for (const [key, keep] of [['before', (a: number, b: number) => a < b], ['since', (a: number, b: number) => a > b]] as const) {
      for (const ref of f.get(key) ?? []) {
        const t = Date.parse((await imageOf(x, ref)).created);
        imgs = imgs.filter((i) => keep(Date.parse(i.created), t));
      }
    }
    return sendJson(reply, 200, imgs.map(imageSummary));
  });

  app.post<{ Querystring: Query }>('/images/create', async (req, reply) => {
    const q = req.query;
    const src = first(q.fromSrc);
    if (src !== undefined) {
      if (src !== '-') throw dockerInvalid('Silo imports only from the request body (fromSrc=-), not from URLs');
      const repo = first(q.repo) ?? '';
      const tag = first(q.tag) ?? '';
      const name = repo ? (tag ? `${repo}:${tag}` : repo) : undefined;
      const changes = all(q.changes).flatMap((s) => s.split('\n')).filter((s) => s.trim());
      const write = jsonStream(reply);
      try {
        const img = await st.importImage(req.body as NodeJS.ReadableStream, { name, changes, comment: first(q.message) || undefined });
        x.svc.events.publish('image', 'import', img.id, { name: img.names[0] ?? '' });
        write({ status: img.id });
      } catch (e) {
        reply.raw.write(streamError(e));
      }
      reply.raw.end();
      return;
    }
    const from = first(q.fromImage);
    if (!from) throw dockerInvalid('fromImage or fromSrc is required');
    await pullRoute(x, req, reply, from);
  });

  app.post<{ Querystring: Query }>('/images/prune', async (req, reply) => {
    const f = filters(req.query, ['dangling', 'label', 'label!', 'until']);
    const dangling = boolFilter(f, 'dangling') ?? true;
    const keep = labelsAndUntil(f, (i: Image) => ({ labels: i.config.Labels, created: i.created }));
    const deleted: Record<string, string>[] = [];
    // What the prune gives back is what images take on disk before and after it (docker system df's measure).
    const before = await imagesOnDisk(st);
    for (const i of await st.listImages()) {
      if (x.svc.compute.imageInUse(i.id) || !keep(i)) continue;
      if (dangling && i.names.length) continue;
      try {
        const r = await st.removeImage(i.id, { force: true, inUse: (id) => x.svc.compute.imageInUse(id) });
        for (const u of r.untagged) deleted.push({ Untagged: familiarName(u) });
        for (const d of r.deleted) deleted.push({ Deleted: d });
      } catch {
        /* in use meanwhile */
      }
    }
    return sendJson(reply, 200, { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: Math.max(0, before - (await imagesOnDisk(st))) });
  });

  app.get<W>('/images/*', async (req, reply) => {
    const path = req.params['*'];
    let m: RegExpMatchArray | null;
    if ((m = path.match(/^(.+)\/json$/))) return sendJson(reply, 200, imageInspect(await imageOf(x, m[1])));
    if ((m = path.match(/^(.+)\/history$/))) return sendJson(reply, 200, imageHistory(await imageOf(x, m[1]), await st.listLayers()));
    if ((m = path.match(/^(.+)\/get$/))) return sendSave(x, reply, [m[1]]);
    throw new DockerError(404, 'page not found');
  });

  app.post<W>('/images/*', async (req, reply) => {
    const path = req.params['*'];
    let m: RegExpMatchArray | null;
    if ((m = path.match(/^(.+)\/tag$/))) {
      const repo = first(req.query.repo);
      if (!repo) throw dockerInvalid('repository name must have at least one component');
      const img = await imageOf(x, m[1]);
      const name = `${repo}:${first(req.query.tag) || 'latest'}`;
      await st.tagImage(img.id, name);
      x.svc.events.publish('image', 'tag', img.id, { name: familiarName(normalizeName(name)) });
      return reply.status(201).send();
    }
    if ((m = path.match(/^(.+)\/push$/))) return pushRoute(x, req, reply, m[1]);
    throw new DockerError(404, 'page not found');
  });

  app.delete<W>('/images/*', async (req, reply) => {
    const ref = req.params['*'];
    const img = await imageOf(x, ref);
    const force = flag(req.query.force);
    const byId = img.id.replace('sha256:', '').startsWith(ref.replace('sha256:', ''));
    const lastName = byId || img.names.length <= 1;
    const users = x.svc.compute.list(true).filter((r) => r.ImageId === img.id);
    if (lastName && users.length) {
      const running = users.find((r) => r.State === 'Running' || r.State === 'Paused');
      if (running) throw dockerConflict(`conflict: unable to delete ${byId ? shortId(img.id) : familiarName(normalizeName(ref))} (cannot be forced) - image is being used by running container ${shortId(running.Id)}`);
      if (!force) throw dockerConflict(`conflict: unable to delete ${byId ? shortId(img.id) : familiarName(normalizeName(ref))} (must be forced) - image is being used by stopped container ${shortId(users[0].Id)}`);
    }
    if (byId && img.names.length > 1 && !force) throw dockerConflict(`conflict: unable to delete ${shortId(img.id)} (must be forced) - image is referenced in multiple repositories`);
    const r = await st.removeImage(byId ? img.id : ref, { force: true, inUse: (id) => x.svc.compute.imageInUse(id) });
    // As dockerd unless noprune: once the image is gone, its untagged parents (a build's steps) go with it, up to
    // the first that has a name, another child or a container.
    if (r.deleted.includes(img.id) && !flag(req.query.noprune)) {
      for (let parent = img.parent; parent; ) {
        const images = await st.listImages();
        const p = images.find((i) => i.id === parent);
        if (!p || p.names.length || images.some((i) => i.parent === p.id) || x.svc.compute.imageInUse(p.id)) break;
        const gone = await st.removeImage(p.id, { inUse: (id) => x.svc.compute.imageInUse(id) }).catch(() => undefined);
        if (!gone?.deleted.length) break;
        r.deleted.push(...gone.deleted);
        parent = p.parent;
      }
    }
    for (const n of r.untagged) x.svc.events.publish('image', 'untag', img.id, { name: familiarName(n) });
    for (const d of r.deleted) x.svc.events.publish('image', 'delete', d);
    return sendJson(reply, 200, [...r.untagged.map((u) => ({ Untagged: familiarName(u) })), ...r.deleted.map((d) => ({ Deleted: d }))]);
  });
}

export { dockerInvalid };
