// `silo vm template make|ls|rm`: the daemon's VM templates (docs/vm.md "Templates"). A template is named by the limits
// of the containers that use it, as `run --isolation vm` takes them (-m, --cpus). `silo vm kernel ls|rm`: the guest
// kernels made for containers that named one (docs/vm.md "Guest kernels").

import { call, enc } from '../client.js';
import { eachTarget } from '../errors.js';
import { parseSize } from '../flags.js';
import { table } from '../format.js';
import type { VmKernelInfo, VmTemplateInfo as TemplateInfo } from '../../compute/types.js';

const row = (t: TemplateInfo) => [t.Key, `${t.MemoryMiB} MiB`, String(t.Cpus), t.Kernel ?? 'default', `${(t.DiskBytes / 1048576).toFixed(1)} MiB`, t.Created];
const HEAD = ['TEMPLATE', 'VM MEMORY', 'VCPUS', 'KERNEL', 'ON DISK', 'CREATED'];

export async function make(o: { memory?: string; cpus?: string; vmKernel?: string; quiet?: boolean }): Promise<number> {
  const body: { Memory?: number; Cpus?: number; Kernel?: string } = {};
  if (o.vmKernel !== undefined) body.Kernel = o.vmKernel;
  if (o.memory !== undefined) body.Memory = parseSize(o.memory, 'memory');
  if (o.cpus !== undefined) {
    body.Cpus = Number(o.cpus);
    if (!(body.Cpus > 0)) throw new Error(`invalid --cpus: ${o.cpus}`);
  }
  const t = await call<TemplateInfo>('POST', '/v1/vm/templates', body);
  process.stdout.write(o.quiet ? `${t.Key}\n` : table(HEAD, [row(t)]) + '\n');
  return 0;
}

/** Only json: another format is refused, not drawn as the table. */
function checkFormat(format: string | undefined): void {
  if (format !== undefined && format !== 'json') throw new Error(`unsupported --format ${format}: only json`);
}

export async function ls(o: { quiet?: boolean; format?: string }): Promise<number> {
  checkFormat(o.format);
  const all = await call<TemplateInfo[]>('GET', '/v1/vm/templates');
  if (o.format === 'json') process.stdout.write(JSON.stringify(all) + '\n');
  else if (o.quiet) process.stdout.write(all.map((t) => `${t.Key}\n`).join(''));
  else process.stdout.write(table(HEAD, all.map(row)) + '\n');
  return 0;
}

export async function rm(keys: string[]): Promise<number> {
  return eachTarget(keys, async (k) => {
    await call('DELETE', `/v1/vm/templates/${enc(k)}`);
    process.stdout.write(`${k}\n`);
  });
}

const KHEAD = ['PACKAGE', 'RELEASE', 'VERSION', 'CONTAINERS', 'ON DISK', 'CREATED'];
const krow = (k: VmKernelInfo) => [k.Package, k.Release, k.Version, String(k.Containers), `${(k.DiskBytes / 1048576).toFixed(1)} MiB`, k.Created];

export async function kernelLs(o: { quiet?: boolean; format?: string }): Promise<number> {
  checkFormat(o.format);
  const all = await call<VmKernelInfo[]>('GET', '/v1/vm/kernels');
  if (o.format === 'json') process.stdout.write(JSON.stringify(all) + '\n');
  else if (o.quiet) process.stdout.write(all.map((k) => `${k.Package}\n`).join(''));
  else process.stdout.write(table(KHEAD, all.map(krow)) + '\n');
  return 0;
}

export async function kernelRm(pkgs: string[], o: { force?: boolean }): Promise<number> {
  return eachTarget(pkgs, async (p) => {
    await call('DELETE', `/v1/vm/kernels/${enc(p)}${o.force ? '?force=1' : ''}`);
    process.stdout.write(`${p}\n`);
  });
}
