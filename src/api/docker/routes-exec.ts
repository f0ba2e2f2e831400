// exec: create, inspect, resize, and the non-upgraded start (detached, or output-only for clients like dockerode
// without hijack). The upgraded start is in hijack.ts.

import type { FastifyInstance } from 'fastify';
import type { Ctx } from './ctx.js';
import { dockerConflict, dockerInvalid } from './errors.js';
import { execExited, execRecord, responseClient, startFailure } from './hijack.js';
import { int, sendJson, type Query } from './util.js';
import { ExecCreate, ExecStart, parseBody } from './schemas.js';

type P = { Params: { id: string }; Querystring: Query };

export function execRoutes(app: FastifyInstance, x: Ctx): void {
  const c = x.svc.compute;

  app.post<P>('/containers/:id/exec', async (req, reply) => {
    const b = parseBody(ExecCreate, req.body);
    const r = c.get(req.params.id);
    if (r.State === 'Paused') throw dockerConflict(`container ${r.Id} is paused, unpause the container before exec`);
    if (r.State !== 'Running') throw dockerConflict(`container ${r.Id} is not running`);
    if (!Array.isArray(b.Cmd) || b.Cmd.length === 0) throw dockerInvalid('No exec command specified');
    if (b.Privileged) throw dockerInvalid('privileged exec is not supported by Silo');
    const env: Record<string, string> = {};
    for (const e of (Array.isArray(b.Env) ? b.Env : []).map(String)) {
      const i = e.indexOf('=');
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
    }
    const xr = c.execs.create(r.Id, {
      CommandArgs: b.Cmd.map(String),
      ...(b.WorkingDir ? { WorkingDirectory: String(b.WorkingDir) } : {}),
      ...(Object.keys(env).length ? { Environment: env } : {}),
      ...(b.User ? { User: String(b.User) } : {}),
      EmulateConsole: !!b.Tty,
      CreateStdInPipe: !!b.AttachStdin,
      ...(Array.isArray(b.ConsoleSize) && b.ConsoleSize[0] > 0 ? { ConsoleSize: [b.ConsoleSize[0], b.ConsoleSize[1]] as [number, number] } : {}),
    });
    return sendJson(reply, 201, { Id: xr.Id });
  });

  app.get<P>('/exec/:id/json', async (req, reply) => {
    const xr = execRecord(x, req.params.id);
    const p = xr.Process;
    return sendJson(reply, 200, {
      ID: xr.Id,
      Running: xr.Running,
      ExitCode: xr.ExitCode ?? (xr.Running ? null : 0),
      ProcessConfig: { tty: !!p.EmulateConsole, entrypoint: p.CommandArgs[0], arguments: p.CommandArgs.slice(1), privileged: false, user: p.User ?? '' },
      OpenStdin: !!p.CreateStdInPipe,
      OpenStderr: true,
      OpenStdout: true,
      CanRemove: false,
      ContainerID: xr.SystemId,
      DetachKeys: '',
      Pid: xr.Pid ?? 0,
    });
  });

  app.post<P>('/exec/:id/resize', async (req, reply) => {
    const xr = execRecord(x, req.params.id);
    await c.execs.resize(xr.Id, int(req.query.h, 'h') ?? 24, int(req.query.w, 'w') ?? 80);
    return reply.status(200).send();
  });

  app.post<P>('/exec/:id/start', async (req, reply) => {
    const xr = execRecord(x, req.params.id);
    const b = parseBody(ExecStart, req.body);
    if (b.Detach) {
      await c.execs.start(xr.Id);
      return reply.status(200).send();
    }
    reply.hijack();
    const tty = xr.Process.EmulateConsole ?? false;
    const client = responseClient(reply.raw, tty, () => execExited(x, xr.Id));
    await c.execs.start(xr.Id, client).catch((e) => reply.raw.end(startFailure(e, tty)));
  });
}
