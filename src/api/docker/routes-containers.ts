// Container lifecycle: create, inspect, list, start/stop/kill/restart, rm, pause/unpause, wait, update, prune, commit.

import type { FastifyInstance } from 'fastify';
import { isSiloError } from '../../common/errors.js';
import type { ComputeSystemRecord } from '../../compute/types.js';
import type { Ctx } from './ctx.js';
import { DockerError, dockerConflict, dockerInvalid, dockerNotFound, withTag } from './errors.js';
import { containerJson, containerSummary } from './inspect.js';
import { containerSizes } from '../disk-usage.js';
import { isSet, translateCreate } from './translate.js';
import * as S from './schemas.js';
import { parseBody } from './schemas.js';
import { all, filters, first, flag, int, labelsAndUntil, sendJson, type Query } from './util.js';
import { PS_FILTERS, psFilter } from './ps-filter.js';
import { join } from 'node:path';
import { keepSeccompProfile } from './seccomp.js';
import { formatPlatform, parsePlatform } from '../../storage/registry/media.js';

/** dockerd's RestrictedNamePattern: two characters at least (`--name a` is refused there; Silo's own doors take it). */
function checkDockerName(name: string): void {
  if (!/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) throw dockerInvalid(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
}

type P = { Params: { id: string }; Querystring: Query };
const active = (r: ComputeSystemRecord) => r.State === 'Running' || r.State === 'Paused';

export function containerRoutes(app: FastifyInstance, x: Ctx): void {
  const c = x.svc.compute;
  const sizes = (r: ComputeSystemRecord) => containerSizes(x.svc, r).then((s) => ({ SizeRw: s.sizeRw, SizeRootFs: s.sizeRootFs }));

  app.post<{ Querystring: Query }>('/containers/create', async (req, reply) => {
    const body = parseBody(S.ContainerCreate, req.body);
    if (!body.Image) throw dockerInvalid('config cannot be empty in order to create a container');
    let image;
    try {
      image = await x.svc.storage.getImage(String(body.Image));
    } catch (e) {
      // 404 here makes the CLI try a pull, as docker does for a missing image.
      if (isSiloError(e) && e.class === 'NotFound') throw dockerNotFound(`No such image: ${withTag(String(body.Image))}`);
      throw e;
    }
    // `--platform`: the image must be of it (never silently run another's); 404 as dockerd answers, so the CLI pulls.
    const platform = first(req.query.platform);
    if (platform) {
      const want = parsePlatform(platform);
      const have = { os: image.os || 'linux', architecture: image.architecture || 'amd64' };
      if (want.os !== have.os || want.architecture !== have.architecture) {
        throw dockerNotFound(`image with reference ${withTag(String(body.Image))} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${formatPlatform(have)}`);
      }
    }
    const name = first(req.query.name) || undefined;
    if (name !== undefined) checkDockerName(name);
    // A container the request names (--link, --volumes-from) that does not exist is a bad request, as dockerd answers
    // it: a 404 from create tells the docker CLI the image is missing, and it would go and pull it.
    const referenced = (ref: string) => {
      try {
        return c.get(ref);
      } catch (e) {
        if (isSiloError(e) && e.class === 'NotFound') throw dockerInvalid(`could not get container for ${ref}: No such container: ${ref}`);
        throw e;
      }
    };
    const t = await translateCreate(body, name, image, x.svc.storage, {
      volumesOf: (ref) => {
        const r = referenced(ref);
        return { mapped: r.Document.Container.MappedDirectories ?? [], mounts: x.meta.get(r.Id)?.Mounts ?? [] };
      },
      seccompProfile: (json) => keepSeccompProfile(join(x.stateDir, 'docker', 'seccomp'), json),
      linkTarget: async (ref, network) => {
        const r = referenced(ref);
        const net = x.svc.network.getNetwork(network ?? 'nat').Id;
        let ip: string | undefined;
        for (const epId of r.Document.Container.Networking?.Endpoints ?? []) {
          const ep = (() => { try { return x.svc.network.getEndpoint(epId); } catch { return undefined; } })();
          if (ep?.NetworkId === net) ip = ep.IpAddress;
        }
        const m = x.meta.get(r.Id);
        const img = await x.svc.storage.getImage(r.ImageId).catch(() => undefined);
        const exposed = [...new Set([...Object.keys(img?.config.ExposedPorts ?? {}), ...Object.keys(m?.Config.ExposedPorts ?? {})])];
        return { name: r.Name, ip, env: r.Init.Env, exposed, running: r.State === 'Running' };
      },
      nameTaken: (n) => { try { c.get(n); return true; } catch { return false; } },
    });
    const rec = await c.create(t.req);
    await x.meta.set(rec.Id, t.meta);
    if (body.HostConfig?.AutoRemove) x.dropVolumes.add(rec.Id);
    return sendJson(reply, 201, { Id: rec.Id, Warnings: t.warnings });
  });

  app.get<{ Querystring: Query }>('/containers/json', async (req, reply) => {
    const f = filters(req.query, PS_FILTERS);
    const keep = await psFilter(x, f);
    let recs = c.list(true);
    const showAll = flag(req.query.all) || f.has('status') || f.has('exited');
    // A container in its restart back-off is listed as dockerd lists it: among the running ones.
    if (!showAll) recs = recs.filter((r) => active(r) || c.isRestarting(r.Id));
    const kept: ComputeSystemRecord[] = [];
    for (const r of recs) if (await keep(r)) kept.push(r);
    const limit = int(req.query.limit, 'limit');
    if (limit !== undefined && limit > 0) kept.splice(limit);
    const size = flag(req.query.size);
    return sendJson(reply, 200, await Promise.all(kept.map(async (r) => ({ ...containerSummary(x.svc, r, x.meta.get(r.Id)), ...(size ? await sizes(r) : {}) }))));
  });

  app.get<P>('/containers/:id/json', async (req, reply) => {
    const r = c.get(req.params.id);
    const img = await x.svc.storage.getImage(r.ImageId).then((i) => i.config, () => undefined);
    const out = containerJson(x.svc, r, x.meta.get(r.Id), img);
    if (flag(req.query.size)) Object.assign(out, await sizes(r));
    return sendJson(reply, 200, out);
  });

  app.post<P>('/containers/:id/start', async (req, reply) => {
    const r = c.get(req.params.id);
    if (active(r)) return reply.status(304).send();
    await c.start(r.Id);
    return reply.status(204).send();
  });

  const stop = async (id: string, q: Query) => {
    const t = int(q.t ?? q.timeout, 't');
    await c.shutdown(id, { ...(t !== undefined && t >= 0 ? { TimeoutSeconds: t } : {}), ...(first(q.signal) ? { Signal: first(q.signal) } : {}) });
  };
  app.post<P>('/containers/:id/stop', async (req, reply) => {
    const r = c.get(req.params.id);
    if (!active(r)) return reply.status(304).send();
    await stop(r.Id, req.query);
    return reply.status(204).send();
  });

  app.post<P>('/containers/:id/restart', async (req, reply) => {
    const r = c.get(req.params.id);
    if (active(r)) await stop(r.Id, req.query);
    await c.start(r.Id);
    return reply.status(204).send();
  });

  app.post<P>('/containers/:id/kill', async (req, reply) => {
    const r = c.get(req.params.id);
    if (r.State !== 'Running') throw dockerConflict(`cannot kill container: ${req.params.id}: container ${r.Id} is not running`);
    const sig = first(req.query.signal) || 'SIGKILL';
    await c.signal(r.Id, sig);
    // As dockerd: a SIGKILL is answered once the container has exited, so a `docker rm` right after finds it stopped.
    if (/^(SIG)?KILL$|^9$/i.test(sig)) await Promise.race([c.wait(r.Id, 'not-running').catch(() => 0), new Promise((res) => setTimeout(res, 10_000).unref())]);
    return reply.status(204).send();
  });

  app.post<P>('/containers/:id/pause', async (req, reply) => {
    const r = c.get(req.params.id);
    if (r.State === 'Paused') throw dockerConflict(`cannot pause container ${r.Id}: container ${r.Id} is already paused`);
    if (r.State !== 'Running') throw dockerConflict(`container ${r.Id} is not running`);
    await c.pause(r.Id);
    return reply.status(204).send();
  });

  app.post<P>('/containers/:id/unpause', async (req, reply) => {
    const r = c.get(req.params.id);
    if (r.State !== 'Paused') throw dockerConflict(`container ${r.Id} is not paused`);
    await c.resume(r.Id);
    return reply.status(204).send();
  });

  // `docker rm --link PARENT/ALIAS`: a link is written into the container's /etc/hosts and environment when it is
  // made, which a running process has already read; dropping it would change nothing it sees, so it is refused.
  app.delete<{ Params: { id: string; link: string } }>('/containers/:id/:link', async (req) => {
    c.get(req.params.id);
    throw dockerInvalid('legacy links cannot be removed in Silo: recreate the container without --link');
  });

  app.delete<P>('/containers/:id', async (req, reply) => {
    const r = c.get(req.params.id);
    if (c.isRestarting(r.Id) && !flag(req.query.force)) throw dockerConflict(`cannot remove container "/${r.Name}": container is restarting: stop the container before removing or force remove`);
    if (active(r) && !flag(req.query.force)) {
      const why = r.State === 'Paused' ? 'container is paused: unpause and stop the container before removing or force remove' : 'container is running: stop the container before removing or force remove';
      throw dockerConflict(`cannot remove container "/${r.Name}": ${why}`);
    }
    if (flag(req.query.v)) x.dropVolumes.add(r.Id);
    await c.remove(r.Id, { force: true });
    return reply.status(204).send();
  });

  // The CLI sends start only once this response's headers arrive, so they go out at once and the body follows.
  app.post<P>('/containers/:id/wait', async (req, reply) => {
    const cond = first(req.query.condition) || 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw dockerInvalid(`invalid condition: "${cond}"`);
    const r = c.get(req.params.id);
    const done = waitFor(x, r, cond);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': '1.50' });
    res.flushHeaders();
    done.then(
      (code) => res.end(JSON.stringify({ StatusCode: code, Error: null }) + '\n'),
      (e) => res.end(JSON.stringify({ StatusCode: -1, Error: { Message: String((e as Error).message) } }) + '\n'),
    );
  });

  app.post<P>('/containers/:id/resize', async (req, reply) => {
    const r = c.get(req.params.id);
    if (!active(r)) throw dockerConflict(`cannot resize container ${r.Id}: container ${r.Id} is not running`);
    await c.resize(r.Id, int(req.query.h, 'h') ?? 24, int(req.query.w, 'w') ?? 80);
    return reply.status(200).send();
  });

  app.post<P>('/containers/:id/update', async (req, reply) => {
    const r = c.get(req.params.id);
    const b = parseBody(S.ContainerUpdate, req.body);
    const unsupported = Object.keys(b).filter((k) => !['Memory', 'MemoryReservation', 'NanoCpus', 'PidsLimit', 'RestartPolicy', 'CpuShares', 'CpusetCpus', 'MemorySwap'].includes(k) && isSet((b as Record<string, unknown>)[k]));
    if (unsupported.length) throw dockerInvalid(`docker update of ${unsupported.join(', ')} is not supported by Silo (memory, memory-reservation, cpus, cpu-shares, cpuset-cpus, pids-limit and restart are)`);
    if (b.MemorySwap && b.MemorySwap > 0 && b.MemorySwap !== b.Memory) throw dockerInvalid('--memory-swap larger than --memory is not supported by Silo: this kernel has no swap accounting');
    if (b.CpuShares) {
      // cgroup cpu.shares as docker sets them (a Weight from an older create gives way to them).
      const { Weight: _w, ...proc } = r.Document.Container.Processor ?? {};
      await c.modify(r.Id, { ResourcePath: 'Container/Processor', Settings: { ...proc, Shares: Math.min(262144, Math.max(2, b.CpuShares)) } });
      const m = x.meta.get(r.Id);
      if (m) await x.meta.set(r.Id, { ...m, HostConfig: { ...m.HostConfig, CpuShares: b.CpuShares } });
    }
    if (b.CpusetCpus) await c.modify(r.Id, { ResourcePath: 'Container/Processor', Settings: { ...c.get(r.Id).Document.Container.Processor, CpusetCpus: b.CpusetCpus } });
    const memory = { ...(b.Memory && b.Memory > 0 ? { SizeInMB: b.Memory / (1024 * 1024) } : {}), ...(b.MemoryReservation && b.MemoryReservation > 0 ? { ReservationInBytes: b.MemoryReservation } : {}) };
    if (Object.keys(memory).length) await c.modify(r.Id, { ResourcePath: 'Container/Memory', Settings: memory });
    if (b.NanoCpus && b.NanoCpus > 0) await c.modify(r.Id, { ResourcePath: 'Container/Processor', Settings: { Count: b.NanoCpus / 1e9 } });
    if (b.PidsLimit && b.PidsLimit > 0) await c.modify(r.Id, { ResourcePath: 'Container/Pids', Settings: b.PidsLimit });
    if (b.RestartPolicy) {
      await c.modify(r.Id, { ResourcePath: 'RestartPolicy', Settings: { Name: b.RestartPolicy.Name || 'no', MaximumRetryCount: b.RestartPolicy.MaximumRetryCount ?? 0 } });
      const m = x.meta.get(r.Id);
      if (m) await x.meta.set(r.Id, { ...m, HostConfig: { ...m.HostConfig, RestartPolicy: b.RestartPolicy } });
    }
    return sendJson(reply, 200, { Warnings: [] });
  });

  app.post<{ Querystring: Query }>('/containers/prune', async (req, reply) => {
    const keep = pruneFilter(filters(req.query, ['label', 'label!', 'until']));
    const deleted: string[] = [];
    let reclaimed = 0;
    // As dockerd: every container that is not running (created and never started, or exited), but not one its restart
    // policy is about to start again; only the user's (a build step or a CRI pod's container belongs to its owner).
    for (const r of c.list(true).filter((r) => (r.State === 'Stopped' || r.State === 'Created') && r.Document.Owner === 'silo' && !c.isRestarting(r.Id))) {
      if (!keep(r)) continue;
      // Measured before the removal: what the container's own changes took is what the prune gives back.
      const bytes = await c.changedBytes(r.Id).catch(() => 0);
      await c.remove(r.Id).then(() => {
        deleted.push(r.Id);
        reclaimed += bytes;
      }, () => {});
    }
    return sendJson(reply, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });

  app.post<P>('/containers/:id/rename', async (req, reply) => {
    const name = first((req.query as Query).name);
    if (!name) throw dockerInvalid('new name is required');
    checkDockerName(name);
    await c.rename(req.params.id, name);
    return reply.status(204).send();
  });

  app.post<{ Querystring: Query }>('/commit', async (req, reply) => {
    const q = req.query;
    const ref = first(q.container);
    if (!ref) throw dockerInvalid('container is required');
    const repo = first(q.repo);
    const tag = first(q.tag);
    const name = repo ? (tag ? `${repo}:${tag}` : repo) : undefined;
    const changes = all(q.changes).flatMap((s) => s.split('\n')).filter((s) => s.trim());
    // A Config body (dockerode, API clients) is applied as changes on top.
    const b = parseBody(S.CommitConfig, req.body) ?? {};
    if (Array.isArray(b.Cmd)) changes.push(`CMD ${JSON.stringify(b.Cmd)}`);
    if (Array.isArray(b.Entrypoint)) changes.push(`ENTRYPOINT ${JSON.stringify(b.Entrypoint)}`);
    for (const e of Array.isArray(b.Env) ? b.Env : []) changes.push(`ENV ${e}`);
    // History says what made the layer: the container's command, as docker records it.
    const r = c.get(ref);
    const cmd = x.meta.get(r.Id)?.Config.Cmd;
    const createdBy = (Array.isArray(cmd) && cmd.length ? cmd.map(String) : (r.Document.Process?.CommandArgs ?? [])).join(' ');
    const img = await c.commit(r.Id, { name, comment: first(q.comment) || undefined, author: first(q.author) || undefined, changes, createdBy });
    return sendJson(reply, 201, { Id: img.id });
  });
}

/** Exit code once `cond` holds: not-running (now if it is not), next-exit, or removed. */
export async function waitFor(x: Ctx, r: ComputeSystemRecord, cond: string): Promise<number> {
  const c = x.svc.compute;
  if (cond === 'not-running' && r.State === 'Created') return 0;
  if (cond !== 'removed') return c.wait(r.Id, cond === 'next-exit' ? 'next-exit' : 'not-running');
  // removed: the exit code of its last run, once the record is gone.
  let off = () => {};
  const gone = new Promise<void>((resolve) => {
    off = x.svc.events.subscribe((e) => {
      if (e.Id === r.Id && e.Action === 'destroy') resolve();
    });
  });
  try {
    const code = active(r) || r.Document.AutoRemove ? await c.wait(r.Id, 'next-exit') : (r.ExitCode ?? 0);
    try {
      c.get(r.Id);
    } catch {
      return code;
    }
    await gone;
    return code;
  } finally {
    off();
  }
}

export { DockerError };

/** `docker container prune`'s filters (`label`, `label!`, `until`) as a test of a container. */
export function pruneFilter(f: Map<string, string[]>, now = Date.now()): (r: ComputeSystemRecord) => boolean {
  for (const k of f.keys()) if (!['label', 'label!', 'until'].includes(k)) throw dockerInvalid(`invalid filter '${k}'`);
  return labelsAndUntil(f, (r: ComputeSystemRecord) => ({ labels: r.Document.Labels, created: r.Created }), now);
}
