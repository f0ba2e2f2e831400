// Swarm: Silo is a standalone engine, as a dockerd that never joined a swarm. Clients (the CLI's `docker info`,
// compose, SDKs) probe these routes and treat a 404 as a broken daemon but a 503 as "no swarm here", so every swarm
// route answers what a standalone dockerd answers. Joining or starting one is refused: Silo has no swarm mode.

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Ctx } from './ctx.js';

const NOT_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
const send = (reply: FastifyReply, status: number, message: string) =>
  reply.status(status).header('Content-Type', 'application/json').send(JSON.stringify({ message }) + '\n');

export function swarmRoutes(app: FastifyInstance, _x: Ctx): void {
  for (const method of ['POST'] as const)
    for (const url of ['/swarm/init', '/swarm/join'])
      app.route({ method, url, handler: async (_req, reply) => send(reply, 501, 'swarm mode is not supported by Silo: it runs as a standalone engine') });
  app.post('/swarm/leave', async (_req, reply) => send(reply, 503, 'This node is not part of a swarm'));
  for (const root of ['/swarm', '/nodes', '/services', '/tasks', '/secrets', '/configs'])
    for (const url of [root, `${root}/*`])
      app.route({ method: ['GET', 'POST', 'DELETE', 'PUT'], url, handler: async (_req, reply) => send(reply, 503, NOT_MANAGER) });
}
