// The CRI ImageService on the storage service: list, status, remove, the image filesystem, and pull.

import { statfs } from 'node:fs/promises';
import { invalid, isSiloError, SiloError } from '../../common/errors.js';
import type { Services } from '../../host/services.js';
import type { Image } from '../../storage/types.js';
import type { Handler } from './server.js';

interface ImageSpec {
  image: string;
}

/** The CRI's user of an image: a numeric uid, or a name the runtime resolves at create. */
export function imageUser(user: string | undefined): { uid?: { value: number }; username: string } {
  const u = (user ?? '').split(':')[0];
  if (u === '') return { username: '' };
  if (/^\d+$/.test(u)) return { uid: { value: Number(u) }, username: '' };
  return { username: u };
}

function toCri(img: Image) {
  const digests = (img as Image & { repoDigests?: string[] }).repoDigests ?? [];
  return { id: img.id, repo_tags: img.names, repo_digests: digests, size: img.size, ...imageUser(img.config.User), spec: { image: img.id, annotations: {} }, pinned: false };
}

async function find(s: Services, ref: string): Promise<Image | undefined> {
  if (!ref) throw invalid('an image reference is required');
  try {
    return await s.storage.getImage(ref);
  } catch (e) {
    if (isSiloError(e) && e.class === 'NotFound') return undefined;
    throw e;
  }
}

export interface ImageOptions {
  /** Where image layers live, for ImageFsInfo. */
  storageRoot: string;
  /** The registry client, when this build has one. */
  pull?: (ref: string, auth: Record<string, string> | undefined) => Promise<Image>;
}

export function imageHandlers(s: Services, o: ImageOptions): Record<string, Handler> {
  return {
    ListImages: async (req: { filter?: { image?: ImageSpec } }) => {
      const want = req.filter?.image?.image;
      if (want) {
        const img = await find(s, want);
        return { images: img ? [toCri(img)] : [] };
      }
      return { images: (await s.storage.listImages()).map(toCri) };
    },
    ImageStatus: async (req: { image?: ImageSpec; verbose: boolean }) => {
      const img = await find(s, req.image?.image ?? '');
      if (!img) return {};
      const info = req.verbose ? { info: JSON.stringify({ config: img.config, os: img.os, architecture: img.architecture, layers: img.layers }) } : {};
      return { image: toCri(img), info };
    },
    PullImage: async (req: { image?: ImageSpec; auth?: Record<string, string> }) => {
      const ref = req.image?.image ?? '';
      if (!ref) throw invalid('an image reference is required');
      if (o.pull) return { image_ref: (await o.pull(ref, req.auth)).id };
      // Without a registry client only images already here can be "pulled".
      const img = await find(s, ref);
      if (img) return { image_ref: img.id };
      throw new SiloError('Unimplemented', 'SILO_NO_REGISTRY', `image ${ref} is not here and this Silo has no registry client to pull it`);
    },
    RemoveImage: async (req: { image?: ImageSpec }) => {
      const img = await find(s, req.image?.image ?? '');
      // Removing an image that is not there is no error (the CRI asks for idempotent removal).
      if (!img) return {};
      await s.storage.removeImage(img.id, { force: true, inUse: (id) => s.compute.imageInUse(id) });
      return {};
    },
    ImageFsInfo: async () => {
      const layers = await s.storage.listLayers();
      const used = layers.reduce((a, l) => a + l.size, 0);
      const fs = await statfs(o.storageRoot);
      const now = Date.now() * 1e6;
      const usage = { timestamp: now, fs_id: { mountpoint: o.storageRoot }, used_bytes: { value: used }, inodes_used: { value: Math.max(0, fs.files - fs.ffree) } };
      return { image_filesystems: [usage], container_filesystems: [] };
    },
  };
}
