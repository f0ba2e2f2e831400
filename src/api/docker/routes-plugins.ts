// Plugins: Silo runs none and installs none (its network, volume and log drivers are built in). Listing answers as a
// dockerd with no plugins (an empty list: `docker plugin ls`, SDKs' list calls); asking for one by name is dockerd's
// 404; installing, enabling or anything else is refused.

import type { FastifyInstance } from 'fastify';
import type { Ctx } from './ctx.js';
import { DockerError, dockerNotFound } from './errors.js';
import { filters, sendJson, type Query } from './util.js';

export function pluginRoutes(app: FastifyInstance, _x: Ctx): void {
  app.get<{ Querystring: Query }>('/plugins', async (req, reply) => {
    filters(req.query, ['capability', 'enable']);
    return sendJson(reply, 200, []);
  });
  // A plugin's name may hold slashes (vieux/sshfs:latest), so one wildcard route takes them all.
  app.route<{ Params: { '*': string } }>({
    method: ['GET', 'POST', 'DELETE', 'PUT'],
    url: '/plugins/*',
    handler: async (req) => {
      const m = req.method === 'GET' ? /^(.+)\/json$/.exec(req.params['*']) : null;
      if (m) throw dockerNotFound(`plugin "${m[1]}" not found`);
      throw new DockerError(501, 'plugins are not supported by Silo: its network, volume and log drivers are built in');
    },
  });
}
