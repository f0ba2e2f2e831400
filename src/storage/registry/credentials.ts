// Registry credentials saved by `silo login`: one JSON file, mode 0600, in docker's config.json shape
// ({"auths": {"<host>": {"auth": base64("user:password")}}}), written atomically. docker.io's key is docker's
// historical "https://index.docker.io/v1/", so a copied docker config works too.

import { readJson, writeJsonAtomic } from '../../common/atomic.js';
import { invalid } from '../../common/errors.js';
import { DEFAULT_DOMAIN } from '../reference.js';

export interface Credentials {
  username: string;
  password: string;
  /** A refresh/identity token instead of a password (docker's IdentityToken). */
  identityToken?: string;
}

const DOCKER_INDEX = 'https://index.docker.io/v1/';

/** "https://index.docker.io/v1/", "docker.io", "localhost:5000", "https://localhost:5000/v2/" → the registry host key. */
export function registryKey(server: string | undefined): string {
  const s = (server ?? '').trim();
  if (s === '' || s === DOCKER_INDEX || /^(https?:\/\/)?(index\.|registry-1\.)?docker\.io(\/.*)?$/.test(s)) return DEFAULT_DOMAIN;
  const host = s.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(host) && !/^\[[0-9a-fA-F:]+\](:\d+)?$/.test(host)) throw invalid(`invalid registry address "${server}"`);
  return host.toLowerCase();
}

interface AuthFile {
  auths: Record<string, { auth?: string; identitytoken?: string }>;
}

export class CredentialStore {
  constructor(private readonly file: string) {}

  private async read(): Promise<AuthFile> {
    const d = await readJson<AuthFile>(this.file);
    return d && typeof d.auths === 'object' && d.auths ? d : { auths: {} };
  }

  private keyOf(host: string): string {
    return host === DEFAULT_DOMAIN ? DOCKER_INDEX : host;
  }

  async get(host: string): Promise<Credentials | undefined> {
    const e = (await this.read()).auths[this.keyOf(host)];
    if (!e?.auth) return undefined;
    const plain = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) return undefined;
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1), ...(e.identitytoken ? { identityToken: e.identitytoken } : {}) };
  }

  async set(host: string, c: Credentials): Promise<void> {
    const d = await this.read();
    d.auths[this.keyOf(host)] = { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') };
    await writeJsonAtomic(this.file, d); // mode 0600 (writeFileAtomic's default)
  }

  /** Forget a host's credentials; false when there were none. */
  async remove(host: string): Promise<boolean> {
    const d = await this.read();
    const k = this.keyOf(host);
    if (!(k in d.auths)) return false;
    delete d.auths[k];
    await writeJsonAtomic(this.file, d);
    return true;
  }
}
