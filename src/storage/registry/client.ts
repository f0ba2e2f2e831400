// A Distribution API v2 client for one repository on one endpoint, over undici. It authenticates the way docker
// does: the endpoint's /v2/ challenge says Bearer (a token from the realm, for the repository's pull or push scope,
// reused until it expires) or Basic; a 401 mid-session fetches a fresh token once. Errors are one line and name the
// registry, the repository and, for blobs, the digest.

import { Agent, request, type Dispatcher } from 'undici';
import { createHash } from 'node:crypto';
import { invalid, notFound, SiloError, oneLine, unauthenticated, unavailable } from '../../common/errors.js';
import { parseChallenges, repoScope, type Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import type { Endpoint } from './hosts.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, parseManifest, type Descriptor, type ImageIndex, type ImageManifest } from './media.js';

export interface TransportOptions {
  /** Waiting for a response's headers, or for the next body bytes, longer than this fails the request. */
  timeoutMs: number;
  userAgent: string;
}

type Body = Dispatcher.ResponseData['body'];
type Response = { status: number; headers: Record<string, string | string[] | undefined>; body: Body; url: string };


const header = (h: Response['headers'], n: string): string | undefined => {
  const v = h[n];
  return Array.isArray(v) ? v[0] : v;
};

/** Connection pools (one per TLS setting), the challenges endpoints answered and the tokens they gave. */
export class Transport {
  private agents = new Map<string, Agent>();
  private challenges = new Map<string, Challenge>();
  /** Endpoints whose /v2/ answered without a challenge: not asked again. */
  private pinged = new Set<string>();
  private tokens = new Map<string, { token: string; expires: number }>();

  constructor(readonly opts: TransportOptions) {}

  agent(ep: Pick<Endpoint, 'insecure' | 'ca'> | undefined): Agent {
    const key = ep ? `${ep.insecure}|${(ep.ca ?? []).join('')}` : 'default';
    let a = this.agents.get(key);
    if (!a) {
      const t = this.opts.timeoutMs;
      const connect = ep ? { rejectUnauthorized: !ep.insecure, ...(ep.ca ? { ca: ep.ca } : {}) } : {};
      a = new Agent({ headersTimeout: t, bodyTimeout: t, connectTimeout: t, keepAliveTimeout: 10_000, connect });
      this.agents.set(key, a);
    }
    return a;
  }

  challengeOf(base: string): Challenge | undefined {
    return this.challenges.get(base);
  }

  wasPinged(base: string): boolean {
    return this.pinged.has(base) || this.challenges.has(base);
  }

  setPinged(base: string): void {
    this.pinged.add(base);
  }

  setChallenge(base: string, c: Challenge | undefined): void {
    if (c) this.challenges.set(base, c);
    else this.challenges.delete(base);
  }

  tokenGet(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (t && t.expires > Date.now()) return t.token;
    this.tokens.delete(key);
    return undefined;
  }

  tokenSet(key: string, token: string, ttlSeconds: number): void {
    // Ten seconds of slack so a token does not expire between being chosen and reaching the registry.
    this.tokens.set(key, { token, expires: Date.now() + Math.max(0, ttlSeconds - 10) * 1000 });
  }

  /** One HTTP exchange; network failures become a one-line Unavailable naming `what`. */
  async send(url: string, o: { method: string; headers?: Record<string, string>; body?: Dispatcher.DispatchOptions['body']; ep?: Endpoint }, what: string): Promise<Response> {
    try {
      const r = await request(url, {
        method: o.method as Dispatcher.HttpMethod,
        headers: { 'user-agent': this.opts.userAgent, ...o.headers },
        body: o.body,
        dispatcher: this.agent(o.ep),
      });
      return { status: r.statusCode, headers: r.headers, body: r.body, url };
    } catch (e) {
      throw networkError(e, what, this.opts.timeoutMs);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close().catch(() => {})));
    this.agents.clear();
  }
}

export function networkError(e: unknown, what: string, timeoutMs: number): SiloError {
  if (e instanceof SiloError) return e;
  const code = (e as { code?: string }).code ?? '';
  if (/TIMEOUT/.test(code)) return unavailable(`${what}: no answer within ${Math.round(timeoutMs / 1000)} s`);
  if (code === 'ECONNREFUSED') return unavailable(`${what}: connection refused`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return unavailable(`${what}: host not found`);
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) return unavailable(`${what}: TLS certificate not trusted (${code}); add its CA to certs.d/<host>/ca.crt or mark the registry insecure`);
  return unavailable(`${what}: ${oneLine(e)}`);
}

/** Read a whole (small) body, refusing more than `limit` bytes. */
export async function readLimited(body: Body, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw invalid(`${what} refused: over the ${limit >= 1 << 20 ? `${limit >> 20} MiB` : `${limit} bytes`} limit`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** A registry's error body (`{"errors":[{"code","message"}]}`) in one line, or the HTTP status. */
async function registryMessage(r: Response): Promise<string> {
  try {
    const b = await readLimited(r.body, 64 * 1024, 'error body');
    const doc = JSON.parse(b.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = doc.errors?.[0];
    if (e) return [e.code?.toLowerCase().replace(/_/g, ' '), e.message].filter(Boolean).join(': ');
  } catch {
    /* not a registry error document */
  }
  return `HTTP ${r.status}`;
}

/** What a copy of a client (in a worker thread) needs to go on without pinging or authorizing again. */
export interface ClientState {
  challenge?: Challenge;
  authorization?: string;
}

export class RepoClient {
  private authorization?: string;
  private readonly name: string;

  constructor(
    private readonly t: Transport,
    readonly ep: Endpoint,
    /** Repository path on the registry: "library/busybox". */
    readonly path: string,
    private readonly actions: readonly ('pull' | 'push')[],
    readonly credentials?: Credentials,
  ) {
    this.name = `${ep.host}/${path}`;
  }

  private url(p: string): string {
    return p.startsWith('http') ? p : `${this.ep.base}${p}`;
  }

  /** GET /v2/ once per endpoint: learn whether and how it wants authentication. */
  async ping(): Promise<void> {
    if (this.t.wasPinged(this.ep.base)) return;
    const r = await this.t.send(this.url('/v2/'), { method: 'GET', ep: this.ep }, `registry ${this.ep.host}`);
    r.body.resume();
    if (r.status === 401) {
      const cs = parseChallenges(r.headers['www-authenticate']);
      this.t.setChallenge(this.ep.base, cs.find((c) => c.scheme === 'bearer') ?? cs.find((c) => c.scheme === 'basic'));
    } else if (r.status >= 500 || r.status === 404) {
      throw unavailable(`registry ${this.ep.host} answered ${r.status} to /v2/: not a Distribution API v2 registry`);
    }
    this.t.setPinged(this.ep.base);
  }

  /** Ping and authorize now, and say how, so a copy in a worker thread starts where this one is. */
  async state(): Promise<ClientState> {
    await this.ping();
    if (!this.authorization) await this.authorize(false);
    const challenge = this.t.challengeOf(this.ep.base);
    return { ...(challenge ? { challenge } : {}), ...(this.authorization ? { authorization: this.authorization } : {}) };
  }

  /** Start from another client's state (see state()). */
  restore(s: ClientState): void {
    this.t.setPinged(this.ep.base);
    if (s.challenge) this.t.setChallenge(this.ep.base, s.challenge);
    this.authorization = s.authorization;
  }

  /** Authorization for the current challenge: a cached or new token, or Basic credentials. */
  private async authorize(fresh: boolean, asked: string[] = []): Promise<void> {
    const c = this.t.challengeOf(this.ep.base);
    if (!c) return;
    if (c.scheme === 'basic') {
      if (!this.credentials) throw unauthenticated(`${this.denied()}`);
      this.authorization = 'Basic ' + Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64');
      return;
    }
    if (c.scheme !== 'bearer' || !c.params.realm) throw unauthenticated(`registry ${this.ep.host} asks for unsupported authentication "${c.scheme}"`);
    // Our repository's scope, plus any the registry asked for (a cross-repository mount needs pull on the source).
    const scopes = [...new Set([...(this.actions.length ? [repoScope(this.path, this.actions)] : []), ...asked])];
    const key = `${c.params.realm}|${c.params.service ?? ''}|${scopes.join(' ')}|${this.credentials?.username ?? ''}`;
    const cached = fresh ? undefined : this.t.tokenGet(key);
    if (cached) {
      this.authorization = `Bearer ${cached}`;
      return;
    }
    const u = new URL(c.params.realm);
    if (c.params.service) u.searchParams.set('service', c.params.service);
    for (const sc of scopes) u.searchParams.append('scope', sc);
    const headers: Record<string, string> = {};
    const what = `token server ${u.host} for ${this.name}`;
    const realmEp = { ...this.ep, host: u.host, base: u.origin };
    let r;
    if (this.credentials?.identityToken) {
      // An identity (refresh) token is exchanged with an OAuth2 POST, as docker does (distribution's token spec).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.credentials.identityToken, client_id: 'silo', ...(c.params.service ? { service: c.params.service } : {}) });
      if (scopes.length) form.set('scope', scopes.join(' '));
      r = await this.t.send(c.params.realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(), ep: realmEp }, what);
    } else {
      if (this.credentials) headers.authorization = 'Basic ' + Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64');
      // The realm may be another host: its TLS is checked as any host's, loopback allowed over plain HTTP.
      r = await this.t.send(u.toString(), { method: 'GET', headers, ep: realmEp }, what);
    }
    if (r.status === 401 || r.status === 403) {
      r.body.resume();
      throw unauthenticated(this.credentials ? `login to ${this.ep.host} failed: unauthorized: incorrect username or password` : this.denied());
    }
    if (r.status !== 200) throw unavailable(`${what}: ${await registryMessage(r)}`);
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try {
      doc = JSON.parse((await readLimited(r.body, 1 << 20, 'token')).toString('utf8'));
    } catch (e) {
      throw unavailable(`${what}: ${e instanceof SiloError ? e.message : 'answer is not JSON'}`);
    }
    const token = doc.token ?? doc.access_token;
    if (!token) throw unavailable(`${what}: answer has no token`);
    this.t.tokenSet(key, token, typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60);
    this.authorization = `Bearer ${token}`;
  }

  /** docker login's check: credentials that earn a token (no scope), or that /v2/ accepts as Basic. */
  async checkLogin(): Promise<void> {
    await this.ping();
    const c = this.t.challengeOf(this.ep.base);
    if (!c) return; // a registry without authentication accepts anyone
    if (!this.credentials) throw unauthenticated(`login to ${this.ep.host}: credentials are required`);
    if (c.scheme === 'bearer') return this.authorize(true);
    await this.authorize(true);
    const r = await this.t.send(this.url('/v2/'), { method: 'GET', headers: { authorization: this.authorization! }, ep: this.ep }, `registry ${this.ep.host}`);
    r.body.resume();
    if (r.status === 401) throw unauthenticated(`login to ${this.ep.host} failed: unauthorized: incorrect username or password`);
    if (r.status !== 200) throw unavailable(`login to ${this.ep.host}: HTTP ${r.status}`);
  }

  private denied(): string {
    const verb = this.actions.includes('push') ? 'push' : 'pull';
    return `${verb} access denied for ${this.name}, repository does not exist or may require 'silo login'`;
  }

  /**
   * Send a request with authorization; on a 401 learn the new challenge and retry once (not for a streamed body,
   * which cannot be sent twice: callers authorize with a small request first). Redirects are followed for GET/HEAD,
   * without our Authorization header when they leave the registry's origin (blob storage signs its own URLs).
   */
  async call(method: string, p: string, o: { headers?: Record<string, string>; body?: Dispatcher.DispatchOptions['body']; what: string }): Promise<Response> {
    await this.ping();
    if (!this.authorization) await this.authorize(false);
    for (let attempt = 0; ; attempt++) {
      const headers = { ...o.headers, ...(this.authorization ? { authorization: this.authorization } : {}) };
      let r = await this.t.send(this.url(p), { method, headers, body: o.body, ep: this.ep }, o.what);
      if (r.status === 401 && attempt === 0 && (o.body === undefined || typeof o.body === 'string' || Buffer.isBuffer(o.body))) {
        r.body.resume();
        const cs = parseChallenges(r.headers['www-authenticate']);
        const c = cs.find((x) => x.scheme === 'bearer') ?? cs.find((x) => x.scheme === 'basic');
        if (!c) throw unauthenticated(this.denied());
        this.t.setChallenge(this.ep.base, c);
        await this.authorize(true, (c.params.scope ?? '').split(' ').filter(Boolean));
        continue;
      }
      for (let hops = 0; (method === 'GET' || method === 'HEAD') && r.status >= 301 && r.status <= 308 && r.status !== 304 && hops < 5; hops++) {
        const loc = header(r.headers, 'location');
        r.body.resume();
        if (!loc) throw unavailable(`${o.what}: redirect without a Location`);
        const next = new URL(loc, r.url);
        const same = next.origin === new URL(this.ep.base).origin;
        const h = { ...o.headers, ...(same && this.authorization ? { authorization: this.authorization } : {}) };
        r = await this.t.send(next.toString(), { method, headers: h, ep: same ? this.ep : undefined }, o.what);
      }
      if (r.status === 401) {
        r.body.resume();
        throw unauthenticated(this.credentials ? `${this.name}: unauthorized: authentication failed` : this.denied());
      }
      if (r.status === 403) throw unauthenticated(`${this.denied()} (${await registryMessage(r)})`);
      return r;
    }
  }

  /** GET a manifest by tag or digest; verified against the digest when asked by digest. */
  async getManifest(ref: string): Promise<{ manifest: ImageManifest | ImageIndex; digest: string; bytes: Buffer; mediaType: string }> {
    const what = `manifest for ${this.name}${ref.startsWith('sha256:') ? '@' : ':'}${ref}`;
    const r = await this.call('GET', `/v2/${this.path}/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT.join(', ') }, what });
    if (r.status === 404) {
      throw new SiloError('NotFound', 'SILO_NOT_FOUND', `${what} not found: ${await registryMessage(r)}`);
    }
    if (r.status !== 200) throw unavailable(`${what}: ${await registryMessage(r)}`);
    const len = Number(header(r.headers, 'content-length') ?? '0');
    if (len > MAX_MANIFEST_BYTES) {
      r.body.destroy();
      throw invalid(`${what} refused: ${len} bytes is over the 4 MiB limit`);
    }
    const bytes = await readLimited(r.body, MAX_MANIFEST_BYTES, what);
    const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
    if (ref.startsWith('sha256:') && digest !== ref) throw invalid(`${what} refused: its content has digest ${digest}`);
    const ct = header(r.headers, 'content-type');
    const manifest = parseManifest(bytes, ct);
    return { manifest, digest, bytes, mediaType: manifest.mediaType };
  }

  /** GET a blob: the response body, not yet verified (see verify.ts). Follows redirects; `urls` for foreign layers. */
  async getBlob(d: Descriptor, label: string): Promise<Body> {
    const what = `${label} ${d.digest} of ${this.name}`;
    let r = await this.call('GET', `/v2/${this.path}/blobs/${d.digest}`, { what });
    if (r.status === 404 && d.urls?.length) {
      r.body.resume();
      // A foreign layer the registry does not hold: docker fetches it from the URLs in its descriptor.
      for (const u of d.urls) {
        if (!/^https?:\/\//.test(u)) continue;
        r = await this.t.send(u, { method: 'GET' }, what);
        if (r.status === 200) break;
        r.body.resume();
      }
    }
    if (r.status === 404) throw notFound('blob', `${d.digest} in ${this.name}`);
    if (r.status !== 200) throw unavailable(`${what}: ${await registryMessage(r)}`);
    return r.body;
  }

  /** GET /v2/<name>/tags/list, following the Link header's pages. */
  async listTags(): Promise<string[]> {
    const out: string[] = [];
    let next: string | undefined = `/v2/${this.path}/tags/list?n=1000`;
    for (let pages = 0; next && pages < 100; pages++) {
      const what = `tags of ${this.name}`;
      const r = await this.call('GET', next, { what });
      if (r.status === 404) throw new SiloError('NotFound', 'SILO_NOT_FOUND', `repository ${this.name} not found: ${await registryMessage(r)}`);
      if (r.status !== 200) throw unavailable(`${what}: ${await registryMessage(r)}`);
      const link = header(r.headers, 'link');
      const doc = JSON.parse((await readLimited(r.body, 8 << 20, what)).toString('utf8')) as { tags?: string[] | null };
      out.push(...(doc.tags ?? []));
      next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
    }
    return out;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const r = await this.call('HEAD', `/v2/${this.path}/blobs/${digest}`, { what: `blob ${digest} of ${this.name}` });
    r.body.resume();
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    throw unavailable(`blob ${digest} of ${this.name}: HTTP ${r.status}`);
  }

  /** Start an upload, or mount the blob from `from` (another repository of this registry): 'mounted' when done. */
  async startUpload(digest: string, from?: string): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const q = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : '';
    const what = `upload of ${digest} to ${this.name}`;
    const r = await this.call('POST', `/v2/${this.path}/blobs/uploads/${q}`, { what, body: '', headers: { 'content-length': '0' } });
    if (r.status === 201 && from) {
      r.body.resume();
      return { mounted: true };
    }
    if (r.status !== 202) throw unavailable(`${what}: ${await registryMessage(r)}`);
    r.body.resume();
    const loc = header(r.headers, 'location');
    if (!loc) throw unavailable(`${what}: no upload location`);
    return { mounted: false, location: new URL(loc, this.ep.base).toString() };
  }

  private static withDigest(location: string, digest: string): string {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    return u.toString();
  }

  /** Monolithic upload: one PUT with the whole blob. */
  async putBlob(location: string, d: Descriptor, body: AsyncIterable<Uint8Array> | Buffer): Promise<void> {
    const what = `upload of ${d.digest} to ${this.name}`;
    const r = await this.call('PUT', RepoClient.withDigest(location, d.digest), {
      what,
      body: body as Dispatcher.DispatchOptions['body'],
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(d.size) },
    });
    if (r.status !== 201) throw unavailable(`${what}: ${await registryMessage(r)}`);
    r.body.resume();
  }

  /** Chunked upload: PATCH each chunk with its Content-Range, then a PUT that names the digest. */
  async putBlobChunked(location: string, d: Descriptor, chunks: AsyncIterable<Buffer>): Promise<void> {
    const what = `upload of ${d.digest} to ${this.name}`;
    let loc = location;
    let offset = 0;
    for await (const c of chunks) {
      const r = await this.call('PATCH', loc, {
        what,
        body: c,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(c.length), 'content-range': `${offset}-${offset + c.length - 1}` },
      });
      if (r.status !== 202) throw unavailable(`${what}: chunk at ${offset}: ${await registryMessage(r)}`);
      r.body.resume();
      offset += c.length;
      const next = header(r.headers, 'location');
      if (next) loc = new URL(next, this.ep.base).toString();
    }
    const r = await this.call('PUT', RepoClient.withDigest(loc, d.digest), { what, body: '', headers: { 'content-length': '0' } });
    if (r.status !== 201) throw unavailable(`${what}: ${await registryMessage(r)}`);
    r.body.resume();
  }

  /** PUT a manifest under a tag or its digest; answers the digest the registry computed. */
  async putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    const what = `manifest ${this.name}:${ref}`;
    const r = await this.call('PUT', `/v2/${this.path}/manifests/${ref}`, { what, body: bytes, headers: { 'content-type': mediaType } });
    if (r.status !== 201) throw unavailable(`push of ${what}: ${await registryMessage(r)}`);
    r.body.resume();
    return header(r.headers, 'docker-content-digest') ?? 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  }
}
