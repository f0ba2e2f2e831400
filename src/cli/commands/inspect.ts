// `silo inspect [--type container|image|network] [-f TEMPLATE] NAME...`: systems first, then images, then networks.

import { call, enc } from '../client.js';
import { CliError, DaemonError, describe } from '../errors.js';
import { renderTemplate } from '../format.js';

async function lookup(ref: string, type?: string): Promise<unknown> {
  const notFound = (e: unknown) => e instanceof DaemonError && e.status === 404;
  if (!type || type === 'container') {
    try {
      return await call('GET', `/v1/systems/${enc(ref)}`);
    } catch (e) {
      if (!notFound(e) || type === 'container') throw notFound(e) ? new CliError(`No such container: ${ref}`, 125) : e;
    }
  }
  if (!type || type === 'image') {
    try {
      return await call('GET', `/v1/images/${enc(ref)}`);
    } catch (e) {
      if (!notFound(e) || type === 'image') throw notFound(e) ? new CliError(`No such image: ${ref}`, 125) : e;
    }
  }
  try {
    return await call('GET', `/v1/networks/${enc(ref)}`);
  } catch (e) {
    if (notFound(e)) throw new CliError(type === 'network' ? `No such network: ${ref}` : `No such object: ${ref}`, 125);
    throw e;
  }
}

export async function inspect(refs: string[], f: { type?: string; format?: string }): Promise<number> {
  if (f.type && f.type !== 'container' && f.type !== 'image' && f.type !== 'network') throw new CliError(`"${f.type}" is not a valid value for --type`);
  const found: unknown[] = [];
  const errors: string[] = [];
  let code = 0;
  for (const r of refs) {
    try {
      found.push(await lookup(r, f.type));
    } catch (e) {
      const d = describe(e);
      errors.push(d.line);
      code = d.code;
    }
  }
  if (f.format && f.format !== 'json') {
    for (const o of found) process.stdout.write(`${renderTemplate(f.format, o)}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
  }
  for (const e of errors) process.stderr.write(`${e}\n`);
  return code;
}
