// The Docker Engine API front door (issue 4). Being built; the daemon serves whatever this returns on docker.sock.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Services } from '../../host/services.js';

export function buildDockerApi(_svc: Services): FastifyInstance {
  const app = Fastify({ logger: false });
  return app;
}
