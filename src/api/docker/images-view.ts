// Silo images in docker's shapes: list summaries, inspect, history.

import type { Image, Layer } from '../../storage/types.js';
import { familiarName } from '../../storage/reference.js';
import { chainIds } from '../../storage/digest.js';
import { unix } from './util.js';

/** Docker shows names familiar (busybox:latest); digests-only names are RepoDigests. */
export const repoTags = (i: Image) => i.names.filter((n) => !n.includes('@')).map(familiarName);

export function imageSummary(i: Image): Record<string, unknown> {
  return {
    Id: i.id,
    ParentId: i.parent ?? '',
    RepoTags: repoTags(i),
    RepoDigests: i.names.filter((n) => n.includes('@')).map(familiarName),
    Created: unix(i.created),
    Size: i.size,
    SharedSize: -1,
    Labels: i.config.Labels ?? {},
    Containers: -1,
  };
}

export function imageInspect(i: Image): Record<string, unknown> {
  const comment = i.history[i.history.length - 1]?.comment ?? '';
  const author = [...i.history].reverse().find((h) => h.author)?.author ?? '';
  return {
    Id: i.id,
    RepoTags: repoTags(i),
    RepoDigests: i.names.filter((n) => n.includes('@')).map(familiarName),
    Parent: i.parent ?? '',
    Comment: comment,
    Created: i.created,
    DockerVersion: '',
    Author: author,
    Config: {
      Hostname: '',
      Domainname: '',
      User: i.config.User ?? '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      ExposedPorts: i.config.ExposedPorts,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: i.config.Env ?? null,
      Cmd: i.config.Cmd ?? null,
      Image: '',
      Volumes: i.config.Volumes ?? null,
      WorkingDir: i.config.WorkingDir ?? '',
      Entrypoint: i.config.Entrypoint ?? null,
      OnBuild: i.config.OnBuild ?? null,
      ...(i.config.Healthcheck ? { Healthcheck: i.config.Healthcheck } : {}),
      Labels: i.config.Labels ?? null,
      ...(i.config.StopSignal ? { StopSignal: i.config.StopSignal } : {}),
      ...(i.config.Shell ? { Shell: i.config.Shell } : {}),
    },
    Architecture: i.architecture,
    Os: i.os,
    Size: i.size,
    GraphDriver: { Name: 'overlay2', Data: null },
    RootFS: { Type: 'layers', Layers: i.layers },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

/** Newest first; entries that made a layer carry its size; only the top one carries the image id and tags. */
export function imageHistory(i: Image, layers: Layer[]): Record<string, unknown>[] {
  const sizeOf = new Map(layers.map((l) => [l.chainId, l.size]));
  const chain = chainIds(i.layers);
  let li = 0;
  const rows = i.history.map((h) => {
    const size = h.empty_layer ? 0 : (sizeOf.get(chain[li++]) ?? 0);
    return { Id: '<missing>', Created: unix(h.created), CreatedBy: h.created_by ?? '', Tags: null as string[] | null, Size: size, Comment: h.comment ?? '' };
  });
  rows.reverse();
  if (rows.length) Object.assign(rows[0], { Id: i.id, Tags: repoTags(i) });
  return rows;
}
