// `node dist/bench/render.js [results.json] [out.md]`: regenerate BENCHMARKS.md from the committed results without
// measuring again (for a change of wording; the figures come from the JSON either way).

import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown } from './report/markdown.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const src = process.argv[2] ?? join(root, 'bench/results/latest.json');
const dst = process.argv[3] ?? join(root, 'BENCHMARKS.md');
await writeFile(dst, renderMarkdown(JSON.parse(await readFile(src, 'utf8'))));
console.log(`wrote ${dst} from ${src}`);
