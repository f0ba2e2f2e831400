// A real registry for tests: Debian's docker-registry (the Distribution project's) on loopback, with TLS from a CA
// this fixture makes (openssl), and either htpasswd Basic auth, token auth from a small token server run here, or no
// auth. Everything lives in one temp dir named silo-test-<rand>-registry and goes with teardown().

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as netServer, connect } from 'node:net';
import { join } from 'node:path';
import { sleep } from './harness.js';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export const USER = 'tester';
export const PASSWORD = 'secret-' + randomBytes(3).toString('hex');
export const REFRESH_TOKEN = 'refresh-' + randomBytes(6).toString('hex');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = netServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class RegistryFixture {
  readonly dir = `/tmp/silo-test-${randomBytes(4).toString('hex')}-registry`;
  port = 0;
  tokenPort = 0;
  private proc?: ChildProcess;
  private tokenServer?: Server;
  private log = '';
  /** Token requests seen (scope, user) — tests check token reuse from these. */
  readonly tokenRequests: { scope: string; user?: string }[] = [];
  /** When true the token server accepts connections and never answers. */
  tokenHangs = false;

  constructor(readonly auth: RegistryAuth = 'none', readonly tls = true) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get caFile(): string {
    return join(this.dir, 'ca.crt');
  }

  /** A certs.d tree trusting this registry's CA (for the daemon's --certs-dir). */
  get certsDir(): string {
    return join(this.dir, 'certs.d');
  }

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  private makeCerts(): void {
    this.openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=silo test CA']);
    this.openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(this.dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    this.openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext']);
    // The token signing key and its self-signed certificate, which the registry trusts as its root bundle.
    this.openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=silo test token issuer']);
  }

  private config(): string {
    const lines = [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(this.dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      // Foreign (non-distributable) layers may name loopback URLs: the registry then accepts them without the blob.
      'validation:',
      '  manifests:',
      '    urls:',
      '      allow:',
      "        - '^http://127\\.0\\.0\\.1'",
      'http:',
      `  addr: 127.0.0.1:${this.port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      ...(this.tls ? ['  tls:', `    certificate: ${join(this.dir, 'server.crt')}`, `    key: ${join(this.dir, 'server.key')}`] : []),
    ];
    if (this.auth === 'htpasswd') lines.push('auth:', '  htpasswd:', '    realm: silo-test', `    path: ${join(this.dir, 'htpasswd')}`);
    if (this.auth === 'token') {
      lines.push('auth:', '  token:', `    realm: http://127.0.0.1:${this.tokenPort}/token`, '    service: silo-test-registry', '    issuer: silo-test-issuer', `    rootcertbundle: ${join(this.dir, 'token.crt')}`);
    }
    return lines.join('\n') + '\n';
  }

  /** A JWT the registry accepts (RS256, the signing certificate in x5c), granting `actions` on the scope's repository. */
  private token(scope: string, user: string | undefined): string {
    const der = readFileSync(join(this.dir, 'token.crt'), 'utf8').replace(/-----[^-]+-----|\s/g, '');
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der] };
    const now = Math.floor(Date.now() / 1000);
    const access = scope
      .split(' ')
      .filter(Boolean)
      .map((s) => {
        const [type, ...rest] = s.split(':');
        const actions = rest.pop()!.split(',');
        // Anonymous users may pull; the tester may pull and push.
        return { type, name: rest.join(':'), actions: actions.filter((a) => a === 'pull' || user === USER) };
      });
    const claims = { iss: 'silo-test-issuer', sub: user ?? '', aud: 'silo-test-registry', exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(data).sign(readFileSync(join(this.dir, 'token.key')));
    return `${data}.${b64url(sig)}`;
  }

  /** The registry's CA trusted for its host (port included) in the certs.d tree. */
  private trustHost(): void {
    const d = join(this.certsDir, this.host);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'ca.crt'), readFileSync(this.caFile));
  }

  private async startTokenServer(): Promise<void> {
    this.tokenServer = createServer((req, res) => {
      if (this.tokenHangs) return; // accepted, never answered
      if (req.method === 'POST') {
        // OAuth2 refresh-token grant: the identity token REFRESH_TOKEN stands for the tester.
        let body = '';
        req.on('data', (b) => (body += b));
        req.on('end', () => {
          const f = new URLSearchParams(body);
          if (f.get('grant_type') !== 'refresh_token' || f.get('refresh_token') !== REFRESH_TOKEN) {
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid refresh token"}');
            return;
          }
          const scope = f.get('scope') ?? '';
          this.tokenRequests.push({ scope, user: USER });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: this.token(scope, USER), expires_in: 300 }));
        });
        return;
      }
      const u = new URL(req.url ?? '/', 'http://x');
      const auth = req.headers.authorization;
      let user: string | undefined;
      if (auth?.startsWith('Basic ')) {
        const [n, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        if (n !== USER || p !== PASSWORD) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
          return;
        }
        user = n;
      }
      const scope = u.searchParams.getAll('scope').join(' ');
      this.tokenRequests.push({ scope, user });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: this.token(scope, user), expires_in: 300 }));
    });
    // On a port of its own choosing, held before the registry's is chosen: freePort() can hand out a port just
    // closed again, and the registry then fails to bind while the token server answers its connect checks.
    await new Promise<void>((r) => this.tokenServer!.listen(0, '127.0.0.1', r));
    this.tokenPort = (this.tokenServer!.address() as { port: number }).port;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.makeCerts();
    if (this.auth === 'htpasswd') execFileSync('htpasswd', ['-Bbc', join(this.dir, 'htpasswd'), USER, PASSWORD], { stdio: 'pipe' });
    if (this.auth === 'token') await this.startTokenServer();
    // A port found free may be taken before docker-registry binds it (another fixture starting at the same moment):
    // then it exits at once, and another port is tried.
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      this.trustHost();
      writeFileSync(join(this.dir, 'config.yml'), this.config());
      this.log = '';
      this.proc = spawn('docker-registry', ['serve', join(this.dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc.stdout!.on('data', (b) => (this.log += b));
      this.proc.stderr!.on('data', (b) => (this.log += b));
      if (await this.cameUp()) return;
      if (attempt >= 5 || !/address already in use/.test(this.log)) throw new Error(`docker-registry exited: ${this.log}`);
      rmSync(join(this.certsDir, this.host), { recursive: true, force: true });
    }
  }

  /** The port answers and the registry still runs a moment later (a connect can reach another listener of the port
   *  while the registry exits for want of it). False if it exited. */
  private async cameUp(): Promise<boolean> {
    const p = this.proc!;
    const exited = () => p.exitCode !== null || p.signalCode !== null;
    for (let i = 0; i < 200; i++) {
      if (exited()) return false;
      const up = await new Promise<boolean>((r) => {
        const s = connect(this.port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (up) {
        await sleep(200);
        return !exited();
      }
      await sleep(50);
    }
    throw new Error(`docker-registry did not come up: ${this.log}`);
  }

  get output(): string {
    return this.log;
  }

  async teardown(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      if ((await Promise.race([done.then(() => true), sleep(5000).then(() => false)])) === false) {
        p.kill('SIGKILL');
        await done;
      }
    }
    if (this.tokenServer) {
      this.tokenServer.closeAllConnections();
      await new Promise((r) => this.tokenServer!.close(r));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type ProxyFault =
  | { kind: 'drop'; digest: string } // send half of the blob, then close the connection
  | { kind: 'corrupt'; digest: string } // send the blob with one byte changed
  | { kind: 'huge-manifest'; ref: string } // answer a 5 MiB manifest for this tag
  | { kind: 'redirect'; digest: string } // send the client to the registry itself for this blob (as S3-backed ones do)
  | { kind: 'missing'; digests: string[] }; // answer 404 blob unknown for these blobs (a mirror that lacks them)

/** A plain-HTTP proxy on loopback in front of a plain-HTTP registry that misbehaves on purpose for one blob or tag. */
export class FaultProxy {
  port = 0;
  fault?: ProxyFault;
  /** "METHOD /path" of every request, in order. */
  readonly seen: string[] = [];
  private server?: Server;

  constructor(private readonly upstream: number) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const f = this.fault;
      const url = req.url ?? '/';
      this.seen.push(`${req.method} ${url}`);
      if (f?.kind === 'missing' && f.digests.some((d) => url.includes(`/blobs/${d}`))) {
        const body = JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] });
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
        return;
      }
      if (f?.kind === 'huge-manifest' && req.method === 'GET' && url.endsWith(`/manifests/${f.ref}`)) {
        const body = Buffer.alloc(5 * 1024 * 1024, 32);
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length }).end(body);
        return;
      }
      if (f?.kind === 'redirect' && req.method === 'GET' && url.includes(`/blobs/${f.digest}`)) {
        res.writeHead(307, { location: `http://127.0.0.1:${this.upstream}${url}` }).end();
        return;
      }
      const up = httpRequest({ host: '127.0.0.1', port: this.upstream, method: req.method, path: url, headers: req.headers }, (ur) => {
        const target = f && (f.kind === 'drop' || f.kind === 'corrupt') && req.method === 'GET' && url.includes(`/blobs/${f.digest}`) && ur.statusCode === 200 ? f : undefined;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (!target) return void ur.pipe(res);
        const chunks: Buffer[] = [];
        ur.on('data', (c: Buffer) => chunks.push(c));
        ur.on('end', () => {
          const all = Buffer.concat(chunks);
          if (target.kind === 'drop') {
            res.write(all.subarray(0, all.length >> 1), () => res.socket?.destroy());
          } else {
            all[all.length >> 1] ^= 0xff;
            res.end(all);
          }
        });
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    // A port of its own choosing: none can be taken between choosing and binding it.
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server!.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r) ?? r(undefined));
  }
}
