// Silo's own JSON API on a unix socket: decode → service → encode. Streams (attach, exec) take over the connection
// through an HTTP upgrade, as docker's do.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Services } from '../../host/services.js';
import { lazyCompilers } from '../lazy-compilers.js';
import { toHttpError } from './errors.js';
import { systemRoutes } from './routes-systems.js';
import { imageRoutes } from './routes-images.js';
import { networkRoutes } from './routes-networks.js';
import { registryRoutes } from './routes-registry.js';
import { upgradeRoutes } from './routes-upgrade.js';
import { vmRoutes } from './routes-vm.js';
import { archiveRoutes } from './routes-archive.js';
import { volumeRoutes } from './routes-volumes.js';
import { serveUpgrades, writeHttpError } from './stream.js';
import { oneLine } from '../../common/errors.js';

export function buildNativeApi(svc: Services): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: 4 * 1024 * 1024,
    return503OnClosing: false,
    forceCloseConnections: true,
    // A wrong type or an unknown field is the client's error to hear about, not something to coerce or drop.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Validators and serializers are compiled on a route's first request, not all at start (lazy-compilers.ts).
    schemaController: { compilersFactory: lazyCompilers() },
  });
  // Clients often send a JSON content type with an empty body on POSTs that take none; that is no error.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      done(Object.assign(new Error(`invalid JSON body: ${(e as Error).message}`), { statusCode: 400, code: 'SILO_BAD_JSON' }), undefined);
    }
  });
  // Image bodies are streamed to the storage service, never buffered.
  app.addContentTypeParser(['application/x-tar', 'application/octet-stream', 'application/gzip', 'application/x-gzip'], (_req, payload, done) => done(null, payload));
  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = toHttpError(err);
    // The log keeps the whole message (host paths included) for the operator; the client got it without them.
    if (status >= 500) svc.log.error({ door: 'native', status, code: body.code, err: oneLine(err) }, 'request failed');
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ message: `page not found: ${req.method} ${req.url.split('?')[0]}`, code: 'SILO_NO_ROUTE' });
  });
  systemRoutes(app, svc);
  imageRoutes(app, svc);
  networkRoutes(app, svc);
  registryRoutes(app, svc);
  vmRoutes(app, svc);
  archiveRoutes(app, svc);
  volumeRoutes(app, svc);
  const upgrade = upgradeRoutes(svc);
  serveUpgrades(app, (req, socket, head) => {
    if (head.length) socket.unshift(head);
    upgrade(req, socket).catch((e) => {
      const { status, body } = toHttpError(e);
      writeHttpError(socket, status, body);
    });
  });
  return app;
}
