// Public surface of the storage service. Compute and the front doors use only this.

import type { RootChange } from './root-diff.js';
import type { Finding } from '../common/leaks.js';

import type { Volume } from './volumes.js';
import type { Caps } from './input.js';
import type { LooseLayer } from './layers.js';
export type { Volume } from './volumes.js';

/** OCI image config, the part Silo uses (the `config` object of an OCI image configuration). */
export interface ImageConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Volumes?: Record<string, object>;
  /** The Dockerfile SHELL, for the shell form of later RUN, CMD and ENTRYPOINT instructions. */
  Shell?: string[];
  /** HEALTHCHECK as docker's image config keeps it (times in nanoseconds). */
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  /** ONBUILD instructions, run by a build that starts FROM this image. */
  OnBuild?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  author?: string;
}

export interface Image {
  /** "sha256:<hex>" of the canonical image configuration JSON. */
  id: string;
  /** Normalised full names: "docker.io/library/busybox:latest". */
  names: string[];
  created: string;
  config: ImageConfig;
  /** diff IDs ("sha256:<hex>"), bottom layer first. */
  layers: string[];
  history: HistoryEntry[];
  /** Sum of the layers' uncompressed sizes, bytes. */
  size: number;
  architecture: string;
  os: string;
  /** Digest of the image's manifest blob in the content store (absent on images made before the store existed). */
  manifest?: string;
  /** The image a commit or build step made this one from (docker's Parent), when made here. */
  parent?: string;
  /** Digests of the content-store blobs it references (config, manifest, layer blobs): with its layers, its disk use. */
  blobs?: string[];
}

export interface BlobInfo {
  digest: string;
  size: number;
}

/**
 * The content store as an operation that brings blobs in or sends them out uses it (the registry client's pull and
 * push). Every blob the session touches (has → true, ingest, open) is held until `close`, so no image removal or
 * prune collects it meanwhile; at `close` the blobs no image references are deleted. A daemon killed mid-session
 * holds nothing after its restart: the sweep at start deletes what no image references.
 */
export interface ContentSession {
  /** Is the blob stored? (Then it is held.) */
  has(digest: string): Promise<boolean>;
  /** Bytes of a stored blob; NotFound otherwise. */
  size(digest: string): Promise<number>;
  /** Read a stored blob (held while the session lasts); NotFound otherwise. */
  open(digest: string): Promise<NodeJS.ReadableStream>;
  /**
   * Store a blob, verified while it streams: the digest must be `expected` and, when given, the length `size` (a
   * longer body is cut off at `size`). A mismatch, a short body or a stream error keeps nothing and names the blob
   * (InvalidArgument; DiskFull when the disk is full). Manifests and indexes (by `mediaType`) over 4 MiB are
   * refused. A layer media type is also unpacked as it streams (gzip, zstd where Node has it, or plain tar), so
   * `createImage` finds it ready.
   */
  ingest(expected: string, size: number | undefined, stream: AsyncIterable<Uint8Array | string>, mediaType: string): Promise<BlobInfo>;
  /**
   * Where a worker thread may spool a blob and unpack its layer ahead of `adopt` (ContentStore.spool and
   * LayerStore.extract under this storage root, with these caps).
   */
  readonly spoolPlace: { root: string; caps: Caps };
  /**
   * Take a blob a worker spooled under `spoolPlace` (verified there as `digest`), with the layer it unpacked along or
   * why that layer was refused: the blob is held and in place, the layer ready for createImage. On failure nothing
   * of it is kept.
   */
  adopt(s: { tmp: string; digest: string; size: number; layer?: LooseLayer; refused?: unknown }): Promise<BlobInfo>;
  /**
   * Make (or name) the image of a stored image manifest (OCI or Docker schema 2) whose config and layer blobs are
   * stored: layers not yet unpacked are unpacked (each checked against the config's diff IDs), then the image record
   * is written; `names` move to it as a tag does. The image id is the config digest.
   */
  createImage(o: { manifest: string; names?: string[] }): Promise<Image>;
  /** Release what the session holds and delete the blobs it brought that no image references. */
  close(): Promise<void>;
}

export interface Layer {
  diffId: string;
  chainId: string;
  parent?: string; // chain ID of the layer below
  size: number;
  /** Absolute path of the extracted, read-only directory. */
  path: string;
}

/**
 * A container's root as storage describes it, not mounted (as containerd's snapshotters return mounts): the isolation
 * backend mounts it where the container runs — a union on the host for `process`, disks of a utility VM for `vm`.
 */
export interface RootDescription {
  /** The image's read-only layers, bottom first: the chain id names each (a backend may cache per layer, as the vm
   *  backend's layer disks) and its extracted directory. */
  layers: { chainId: string; path: string }[];
  /** The writable scratch: a sparse image file holding a filesystem; its size is the container's cap. */
  scratch: { path: string; format: 'ext4' | 'tmpfs'; sizeBytes: number };
  /** Overlay options besides the directories: commit must find whole files and real directories in the upper dir. */
  overlayOptions: string[];
}

export interface ImportOptions {
  /** Name to give the image ("name[:tag]"), optional. */
  name?: string;
  /** Dockerfile-style instructions: "CMD [\"sh\"]", "ENV A=b", "WORKDIR /x", "ENTRYPOINT ...", "USER", "EXPOSE", "LABEL". */
  changes?: string[];
  comment?: string;
}

export interface StorageService {
  /** Build busybox:latest from the host's busybox-static if it is not there yet. */
  ensureBaseImage(): Promise<Image>;

  listImages(): Promise<Image[]>;
  /** By name (any docker spelling), full id, or unique id prefix. NotFound otherwise. */
  getImage(ref: string): Promise<Image>;
  /** Import a (possibly gzip'd) tar as a one-layer image. Refuses hostile archives; leaves nothing on failure. */
  importImage(tar: NodeJS.ReadableStream, opts: ImportOptions): Promise<Image>;
  tagImage(ref: string, newName: string): Promise<Image>;
  /** Remove a name, or the image when it was the last name or referred to by id. Conflict if a container uses it unless force. */
  removeImage(ref: string, opts?: { force?: boolean; inUse?: (imageId: string) => boolean }): Promise<{ untagged: string[]; deleted: string[] }>;
  listLayers(): Promise<Layer[]>;

  /** Describe the container's root; its capped scratch (a sparse ext4 image) is made on the first call. Idempotent;
   *  nothing is mounted: the isolation backend mounts the description where the container runs. */
  describeRoot(containerId: string, imageId: string, opts: { scratchBytes: number; inMemory?: boolean }): Promise<RootDescription>;
  /** Loop devices and mounts of storage's with no container `inUse` (or on a deleted scratch); for `silo doctor`. */
  leaks(o: { inUse: (containerId: string) => boolean }): Promise<Finding[]>;
  /** Remove what leaks() found, and only that. */
  fixLeaks(found: Finding[]): Promise<void>;
  /** Delete the scratch image and every file of the container's storage; its backend has unmounted it. Idempotent. */
  removeRoot(containerId: string): Promise<void>;
  /** Turn the scratch's changes into a new layer on top of the image and a new image. `upperDir`: where the mounted
   *  root's changes are (its backend's overlay upper dir); without it the root is not mounted anywhere and the scratch
   *  image is read directly. */
  commit(containerId: string, imageId: string, opts: { name?: string; config?: ImageConfig; changes?: string[]; comment?: string; author?: string; createdBy?: string; upperDir?: string }): Promise<Image>;
  /** docker diff: the container's changes to its image's files (Kind 0 modified, 1 added, 2 deleted), sorted by path;
   *  `upperDir` as for commit; entries added only as `mountPoints` (where the runtime mounts) are left out. */
  changes(containerId: string, opts: { upperDir?: string; mountPoints: string[] }): Promise<RootChange[]>;
  /** Bytes of the container's changes (docker's SizeRw); `upperDir` as for commit. */
  scratchBytes(containerId: string, opts?: { upperDir?: string }): Promise<number>;
  /** How full the container's scratch filesystem is (blocks and inodes in use), from the kernel while it is mounted
   *  (`mountedAt`: a directory on it) or from the image's superblock; undefined when it has no scratch. */
  scratchUsage(containerId: string, opts?: { mountedAt?: string }): Promise<{ usedBytes: number; inodesUsed: number } | undefined>;
  /** A new image with the layers of `baseRef`, another config and one more (empty-layer) history entry: a
   *  Dockerfile's metadata instructions (ENV, CMD, LABEL...) produce these. */
  configureImage(baseRef: string, opts: { config: ImageConfig; createdBy: string; comment?: string }): Promise<Image>;
  /** The image one step of `sourceRef` made on `baseRef` (a build's --cache-from): base's layers and history must begin
   *  source's; the result is base plus source's next history entry (and its layer, when it made one), with `config`.
   *  InvalidArgument when source does not continue base. */
  stepFrom(baseRef: string, sourceRef: string, opts: { config: ImageConfig }): Promise<Image>;
  /** Write the named images as one docker-archive (docker save, moby 25 layout: OCI blobs + manifest.json). */
  exportImages(refs: string[], opts?: { format?: 'docker' | 'oci' }): Promise<NodeJS.ReadableStream>;
  /** Load a docker-archive or OCI layout tar (possibly gzip'd). Refuses hostile archives; nothing is left on failure. */
  loadImages(tar: NodeJS.ReadableStream): Promise<{ images: Image[]; names: string[] }>;
  /** Container ids that have storage (scratch) on disk; for recovery. */
  listRoots(): Promise<string[]>;
  /** Remove dangling images (with `all`: every image no container uses, but the base image) and the layers that no
   *  image or container needs any more. */
  pruneImages(o: { all?: boolean; inUse: (imageId: string) => boolean }): Promise<{ deleted: string[]; untagged: string[]; layers: string[]; blobs: string[]; spaceReclaimed: number }>;
  /** Named volumes (volumes.ts): docker's local driver, owned here; the front doors map their wire onto these. */
  listVolumes(): Promise<Volume[]>;
  /** NotFound otherwise. */
  getVolume(name: string): Promise<Volume>;
  /** `subpath` normalised, once checked to name a file or directory inside an existing volume (volume-subpath); the
   *  mount resolves it again inside the volume when it is made. */
  volumeSubpath(name: string, subpath: string): Promise<string>;
  /** Create, or return the existing volume of that name. InvalidArgument for a bad name or any option. */
  createVolume(name: string, o?: { labels?: Record<string, string>; options?: Record<string, string> }): Promise<Volume>;
  /** Remove a volume and its data; Conflict while `inUseBy` names containers. */
  removeVolume(name: string, o?: { inUseBy?: string[] }): Promise<void>;
  /** Bytes of the volume's files. */
  volumeSize(name: string): Promise<number>;
  /** The data directory of a volume of that name (what containers mount). */
  volumePath(name: string): string;
  /** The volume a mount's host path is (or is inside of), for events; undefined for a path of no volume. */
  volumeAt(hostPath: string): string | undefined;

  /** Wait for the background work of this instance (the scratch pool's refill, the adoption of old images): for
   *  shutdown, and for tests before they delete a store. */
  close(): Promise<void>;

  /** A session on the content store (see ContentSession). */
  openContent(): ContentSession;
  /** Every stored blob, for accounting (docker system df). */
  listBlobs(): Promise<BlobInfo[]>;
}
