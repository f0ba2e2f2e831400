// The Docker Engine API front door: docker's CLI and SDKs drive Silo's compute, storage and network services
// through it. Served by the daemon on <runDir>/docker.sock. Every path may carry a /vX.Y prefix (the CLI sends
// /v1.50/...); it is stripped before routing.

import Fastify, { type FastifyInstance } from 'fastify';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Services } from '../../host/services.js';
import { VERSION } from '../../host/version.js';
import { lazyCompilers } from '../lazy-compilers.js';
import { BuildCache } from './build/cache.js';
import { buildRoutes } from './build/routes.js';
import type { Ctx } from './ctx.js';
import { toDockerError } from './errors.js';
import { stripVersion, upgradeHandler } from './hijack.js';
import { MetaStore } from './meta.js';
import { archiveRoutes } from './routes-archive.js';
import { containerRoutes } from './routes-containers.js';
import { execRoutes } from './routes-exec.js';
import { registryRoutes } from './routes-registry.js';
import { imageRoutes } from './routes-images.js';
import { ioRoutes } from './routes-io.js';
import { networkRoutes } from './routes-networks.js';
import { saveLoadRoutes } from './routes-saveload.js';
import { API_VERSION, systemRoutes } from './routes-system.js';
import { pruneRoutes, volumeRoutes } from './routes-volumes.js';
import { swarmRoutes } from './routes-swarm.js';
import { pluginRoutes } from './routes-plugins.js';
import { StatsSampler } from './stats.js';
import { serveUpgrades } from '../native/stream.js';
import { oneLine } from '../../common/errors.js';

export function buildDockerApi(svc: Services): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
    return503OnClosing: false,
    forceCloseConnections: true,
    exposeHeadRoutes: false,
    rewriteUrl: (req) => stripVersion(req.url ?? '/'),
    // Validators and serializers are compiled on a route's first request, not all at start (lazy-compilers.ts).
    schemaController: { compilersFactory: lazyCompilers() },
  });
  // The front door's own state lives under the daemon's state dir, which is known only once info() answers.
  const x = { svc, dropVolumes: new Set<string>(), stats: new StatsSampler(svc) } as Ctx;
  app.addHook('onReady', async () => {
    const stateDir = String((await svc.info()).StateDir);
    x.stateDir = stateDir;
    x.meta = new MetaStore(join(stateDir, 'docker', 'containers'));
    x.cache = new BuildCache(join(stateDir, 'docker', 'build-cache.json'));
    await x.meta.load();
    await x.cache.load();
    // Contexts of builds a crash interrupted: a build never outlives its daemon (its containers go in recovery).
    await rm(join(stateDir, 'docker', 'build'), { recursive: true, force: true });
    // Docker-only state follows Silo's records: drop it when a container is destroyed, however that happened.
    svc.events.subscribe((e) => {
      if (e.Type !== 'system' || e.Action !== 'destroy') return;
      void cleanup(x, e.Id);
    });
    for (const id of x.meta.ids()) {
      try {
        svc.compute.get(id);
      } catch {
        await cleanup(x, id);
      }
    }
  });

  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      done(Object.assign(new Error(`invalid JSON body: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
  // Tars (build context, load, import, archive PUT) are streamed to the services; the CLI labels some text/plain.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(['text/plain', '*'], (_req, payload, done) => done(null, payload));

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('Api-Version', API_VERSION).header('Ostype', 'linux').header('Server', `Docker/${VERSION} (linux)`);
    // The CLI parses error bodies only under exactly application/json.
    const ct = reply.getHeader('content-type');
    if (typeof ct === 'string' && ct.startsWith('application/json;')) reply.header('Content-Type', 'application/json');
    return payload;
  });
  app.setErrorHandler((err, _req, reply) => {
    const { status, message } = toDockerError(err);
    if (status >= 500) svc.log.error({ door: 'docker', status, err: oneLine(err) }, 'request failed');
    void reply.status(status).header('Content-Type', 'application/json').send(JSON.stringify({ message }) + '\n');
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).header('Content-Type', 'application/json').send(JSON.stringify({ message: `page not found: ${req.method} ${req.url.split('?')[0]}` }) + '\n');
  });

  systemRoutes(app, x);
  containerRoutes(app, x);
  ioRoutes(app, x);
  execRoutes(app, x);
  registryRoutes(app, x);
  imageRoutes(app, x);
  saveLoadRoutes(app, x);
  buildRoutes(app, x);
  archiveRoutes(app, x);
  networkRoutes(app, x);
  volumeRoutes(app, x);
  pruneRoutes(app, x);
  swarmRoutes(app, x);
  pluginRoutes(app, x);
  serveUpgrades(app, upgradeHandler(x));
  return app;
}

async function cleanup(x: Ctx, id: string): Promise<void> {
  const m = x.meta.get(id);
  x.stats.forget(id);
  if (m && x.dropVolumes.has(id)) {
    for (const v of m.Mounts) {
      if (v.Type !== 'volume' || !v.Name) continue;
      const meta = await x.svc.storage.getVolume(v.Name).catch(() => undefined);
      // Not one another container still mounts (--volumes-from): docker removes only what nobody uses.
      const used = x.meta.ids().some((o) => o !== id && x.meta.get(o)?.Mounts.some((mm) => mm.Name === v.Name));
      if (meta && 'com.docker.volume.anonymous' in meta.Labels && !used) await x.svc.storage.removeVolume(v.Name).catch(() => {});
    }
  }
  x.dropVolumes.delete(id);
  await x.meta.delete(id).catch(() => {});
}
