// The CRI ImageService on the storage service: list, status, remove, the image filesystem, and pull.

import { statfs } from 'node:fs/promises';
import { invalid, isSiloError } from '../../common/errors.js';
import type { Credentials } from '../../storage/registry/credentials.js';
import type { Services } from '../../host/services.js';
import type { Image } from '../../storage/types.js';
import type { Handler } from './server.js';
import { writableLayer } from './containers.js';
import { metaOf } from './meta.js';

/** The compute systems that are the CRI's containers (not its sandboxes' infra). */
const criContainerIds = (s: Services) => s.compute.list(true).filter((r) => metaOf(r)?.kind === 'container').map((r) => r.Id);

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

/** Names by digest (`repo@sha256:…`, kept for pulled images) are the CRI's repo digests; the others its tags. */
function toCri(img: Image) {
  const digests = img.names.filter((n) => n.includes('@'));
  const tags = img.names.filter((n) => !n.includes('@'));
  return { id: img.id, repo_tags: tags, repo_digests: digests, size: img.size, ...imageUser(img.config.User), spec: { image: img.id, annotations: {} }, pinned: false };
}

/** The kubelet's AuthConfig as registry credentials: user and password, or `auth` (base64 user:password), or an
 *  identity token; a bare registry token is refused (the registry client gets its own from the token server). */
export function credentialsOf(a: Record<string, string> | null | undefined): Credentials | undefined {
  if (!a) return undefined;
  let { username, password } = a;
  if (a.auth) {
    const raw = Buffer.from(a.auth, 'base64').toString();
    const i = raw.indexOf(':');
    if (i < 0) throw invalid('auth config: auth is not base64 of user:password');
    username = raw.slice(0, i);
    password = raw.slice(i + 1);
  }
  if (a.identity_token) return { username: username ?? '', password: '', identityToken: a.identity_token };
  if (a.registry_token && !username) throw invalid('auth config: a registry token alone is not supported; give a user and password or an identity token');
  return username ? { username, password: password ?? '' } : undefined;
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
    PullImage: async (req: { image?: ImageSpec; auth?: Record<string, string> | null }) => {
      const ref = req.image?.image ?? '';
      if (!ref) throw invalid('an image reference is required');
      const img = await s.registry.pull(ref, { auth: credentialsOf(req.auth) });
      s.events.publish('image', 'pull', img.id, { name: ref });
      return { image_ref: img.id };
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
      // The containers' writable layers (their scratches) are files on the same filesystem: the same id, so the
      // kubelet sees one filesystem for images and containers; in use is what their ContainerStats add up to.
      const writable = await Promise.all(criContainerIds(s).map((id) => writableLayer(s, id, o.storageRoot, now)));
      const containers = {
        timestamp: now,
        fs_id: { mountpoint: o.storageRoot },
        used_bytes: { value: writable.reduce((a, l) => a + l.used_bytes.value, 0) },
        inodes_used: { value: writable.reduce((a, l) => a + l.inodes_used.value, 0) },
      };
      return { image_filesystems: [usage], container_filesystems: [containers] };
    },
  };
}
