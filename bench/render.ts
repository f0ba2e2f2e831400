// `node dist/bench/render.js [results.json] [out.md]`: regenerate BENCHMARKS.md from the committed results without
// measuring again (for a change of wording; the figures come from the JSON either way), with the sections of the
// separate benches (CRI, registry, load soak, VM) from their own files, as `npm run bench` writes it.

import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown } from './report/markdown.js';
import { criSection, withCriSection, type CriResults } from './report/cri.js';
import { registrySection, withRegistrySection, type RegistryResults } from './report/registry.js';
import { soakSection, withSoakSection, type SoakResults } from './report/soak.js';
import { vmSection, withVmSection, type VmResults } from './report/vm.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const src = process.argv[2] ?? join(root, 'bench/results/latest.json');
const dst = process.argv[3] ?? join(root, 'BENCHMARKS.md');
const own = <T>(name: string) => readFile(join(root, 'bench/results', name), 'utf8').then((t) => JSON.parse(t) as T, () => undefined);
let md = renderMarkdown(JSON.parse(await readFile(src, 'utf8')));
const cri = await own<CriResults>('cri.json');
if (cri) md = withCriSection(md, criSection(cri));
const reg = await own<RegistryResults>('registry.json');
if (reg) md = withRegistrySection(md, registrySection(reg));
const soak = await own<SoakResults>('soak.json');
if (soak) md = withSoakSection(md, soakSection(soak));
const vm = await own<VmResults>('vm.json');
if (vm) md = withVmSection(md, vmSection(vm));
await writeFile(dst, md);
console.log(`wrote ${dst} from ${src}`);
