// A worker thread that downloads layer blobs: for each job it GETs the blob (redirects and foreign URLs as the
// daemon's own client does, from the client state the daemon handed over), verifies it while it streams, spools it
// durable under a temporary name in the content store's ingest directory and unpacks it along into the layer
// store's ingest directory. The daemon's thread then adopts both (or, on an error, nothing was kept here). The
// bytes never cross to the daemon's thread: hashing, inflating, tar parsing and file writes run on this thread, so
// three downloads use the machine's cores while the daemon's thread stays free for requests.

import { parentPort } from 'node:worker_threads';
import { isSiloError, oneLine } from '../../common/errors.js';
import { ContentStore } from '../content.js';
import { LayerStore } from '../layers.js';
import { storeLayer } from '../unpack.js';
import { RepoClient, Transport } from './client.js';
import type { FetchJob, FetchReply, WireFailure } from './fetchers.js';
import { counted } from './verify.js';

const transports = new Map<string, Transport>();

function failure(e: unknown): WireFailure {
  if (isSiloError(e)) return { class: e.class, code: e.code, message: e.message };
  const errno = e as NodeJS.ErrnoException;
  return { message: oneLine(e), ...(errno.code ? { errno: errno.code } : {}), ...(errno.syscall ? { syscall: errno.syscall } : {}) };
}

async function run(j: FetchJob): Promise<FetchReply> {
  const key = `${j.timeoutMs}|${j.userAgent}`;
  let t = transports.get(key);
  if (!t) transports.set(key, (t = new Transport({ timeoutMs: j.timeoutMs, userAgent: j.userAgent })));
  const cl = new RepoClient(t, j.ep, j.path, ['pull'], j.creds);
  cl.restore(j.state);
  let lastAt = 0;
  const progress = (n: number) => {
    // Ten a second at most (the daemon's own notes are as frequent), and the end.
    const now = Date.now();
    if (now - lastAt >= 100 || n === j.desc.size) {
      lastAt = now;
      parentPort!.postMessage({ id: j.id, progress: n } satisfies FetchReply);
    }
  };
  const body = await cl.getBlob(j.desc, j.label);
  const r = await storeLayer(new ContentStore(j.root), new LayerStore(j.root, j.caps), undefined, {
    expected: j.desc.digest,
    size: j.desc.size,
    src: counted(body, j.desc, j.label, progress),
    mediaType: j.desc.mediaType,
    unpack: j.unpack,
    spool: true,
  });
  const p = r.prepared;
  return {
    id: j.id,
    done: {
      tmp: r.tmp!,
      digest: r.blob.digest,
      size: r.blob.size,
      ...(p && 'layer' in p ? { layer: p.layer } : {}),
      ...(p && 'error' in p ? { refused: failure(p.error) } : {}),
    },
  };
}

parentPort!.on('message', (j: FetchJob) => {
  run(j).then(
    (reply) => parentPort!.postMessage(reply),
    (e: unknown) => parentPort!.postMessage({ id: j.id, error: failure(e) } satisfies FetchReply),
  );
});
