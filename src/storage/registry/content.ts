// What the registry client needs of the content store: a session that holds what it touches until it closes.
// (The storage service's ContentSession; named here so pull and push depend on nothing else of storage.)

import type { Image } from '../types.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface ContentSession {
  has(digest: string): Promise<boolean>;
  size(digest: string): Promise<number>;
  open(digest: string): Promise<NodeJS.ReadableStream>;
  ingest(expected: string, size: number | undefined, stream: AsyncIterable<Uint8Array | string>, mediaType: string): Promise<BlobInfo>;
  createImage(o: { manifest: string; names?: string[] }): Promise<Image>;
  close(): Promise<void>;
}

/** One line of progress, as docker's JSON messages carry it: a status, optionally for one layer (id), with bytes. */
export interface ProgressMessage {
  status: string;
  id?: string;
  current?: number;
  total?: number;
  /** The push result docker sends as aux: {Tag, Digest, Size}. */
  aux?: Record<string, unknown>;
}

export type ProgressSink = (m: ProgressMessage) => void;
