// Item 4's set-up: one httpd container in Silo and one in dockerd, each published on 127.0.0.1; measured first with
// dockerd's userland proxy (its default), then dockerd is restarted with --userland-proxy=false and a new container.
// Silo's container is measured in both phases, so each Silo/docker ratio comes from targets measured side by side.

import { randomInt } from 'node:crypto';
import type { Env } from '../setup.js';
import { startDockerd } from '../env/dockerd.js';
import type { NativeClient } from '../lib/native.js';
import { errText } from '../lib/proc.js';
import { HTTPD_CMD, measureHttp, type HttpTarget, type NetworkRow } from './network.js';

async function siloTargets(env: Env, native: NativeClient, port: number): Promise<HttpTarget[]> {
  const id = (await env.silo.cli(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', ...HTTPD_CMD])).stdout.trim();
  const rec = await native.request<{ Document: { Container: { Networking: { Endpoints: string[] } } } }>('GET', `/v1/systems/${id}`);
  const ep = await native.request<{ IpAddress: string }>('GET', `/v1/endpoints/${rec.Document.Container.Networking.Endpoints[0]}`);
  return [
    { key: 'silo-published', label: 'Silo, published port 127.0.0.1', url: `http://127.0.0.1:${port}/f` },
    { key: 'silo-direct', label: "Silo, container's own IP", url: `http://${ep.IpAddress}/f` },
  ];
}

async function dockerTargets(env: Env, port: number, proxy: boolean): Promise<HttpTarget[]> {
  const d = env.docker!;
  const id = (await d.cli(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', ...HTTPD_CMD])).stdout.trim();
  const ip = (await d.cli(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id])).stdout.trim();
  const k = proxy ? 'docker-proxy' : 'docker-noproxy';
  const l = proxy ? 'docker (userland proxy)' : 'docker (no userland proxy)';
  return [
    { key: `${k}-published`, label: `${l}, published port 127.0.0.1`, url: `http://127.0.0.1:${port}/f` },
    { key: `${k}-direct`, label: `${l}, container's own IP`, url: `http://${ip}/f` },
  ];
}

export async function networking(env: Env, native: NativeClient, rounds: number, secs: number, log: (m: string) => void) {
  const out: { withProxy?: NetworkRow[]; withoutProxy?: NetworkRow[]; na?: string } = {};
  const base = 20000 + randomInt(0, 9000);
  let silo: HttpTarget[];
  try {
    silo = await siloTargets(env, native, base);
  } catch (e) {
    return { na: `Silo httpd: ${errText(e)}` };
  }
  if (!env.docker) {
    out.withProxy = await measureHttp(silo, rounds, secs, log);
    return out;
  }
  try {
    out.withProxy = await measureHttp([...silo, ...(await dockerTargets(env, base + 1, true))], rounds, secs, log);
    log('restarting dockerd with --userland-proxy=false');
    await env.docker.stop();
    env.docker = await startDockerd(env.tag, env.dirs.dockerData, env.dirs.dockerRun, false);
    out.withoutProxy = await measureHttp([...silo, ...(await dockerTargets(env, base + 2, false))], rounds, secs, log);
  } catch (e) {
    out.na = `docker: ${errText(e)}`;
  }
  return out;
}
