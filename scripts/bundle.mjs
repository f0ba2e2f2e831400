// The `silo` CLI and the daemon as bundles, built by scripts/setup.sh after tsc.
// - dist/cli/main.mjs: commander and Silo's CLI code in one file. Each verb's dynamic import becomes a lazy init in that
//   file, so a verb runs only its own modules' code and requires only its built-ins; one file rather than a chunk per
//   verb spares `silo run` loading its seven chunks (≈4 ms). `silo daemon` imports the daemon's bundle.
// - dist/daemon/: the daemon's own code and typebox (~400 modules, ~220 of them typebox's) in a few files, split at its
//   dynamic imports (each front door, the registry client, the CRI) so a door still loads only when first used. Every
//   module V8 holds costs its source text (comments included; esbuild drops them), a module record and its scope:
//   ~4 MB of the idle daemon's RSS. Other packages stay external (loaded from node_modules as they are: native addons,
//   pino's worker, fastify's plugins resolve files of their own).
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { relative, resolve } from 'node:path';

// The daemon's bundled CommonJS (typebox's) may require Node's built-ins.
const banner = { js: "import { createRequire as __silo_cr } from 'node:module'; const require = __silo_cr(import.meta.url);" };
const common = { bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node24', logLevel: 'warning', outExtension: { '.js': '.mjs' }, banner };

const daemonOut = resolve('dist/daemon');
await rm(daemonOut, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { daemon: 'dist/src/cli/commands/daemon.js' },
  outdir: daemonOut,
  plugins: [
    {
      name: 'daemon',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@sinclair/typebox') ? undefined : { path: a.path, external: true }));
        // A module's import.meta.url names its compiled file (dist/src/…), so the paths it resolves from there (the
        // repository's build/, a worker's file, the CRI's .proto) stay what they are unbundled.
        b.onLoad({ filter: /\/dist\/src\/.*\.js$/ }, async (a) => {
          const s = await readFile(a.path, 'utf8');
          const own = `new URL(${JSON.stringify(relative(daemonOut, a.path))}, import.meta.url).href`;
          return { contents: s.includes('import.meta.url') ? s.replaceAll('import.meta.url', own) : s, loader: 'js', resolveDir: resolve(a.path, '..') };
        });
      },
    },
  ],
});

await rm('dist/cli', { recursive: true, force: true });
await build({
  entryPoints: { main: 'dist/src/cli/main.js' },
  outdir: 'dist/cli',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  logLevel: 'warning',
  // commander is CommonJS and requires Node's built-ins.
  banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
  plugins: [
    {
      // commander requires child_process when loaded, for executable subcommands Silo does not have (≈2 ms per start):
      // it gets the module when it first uses it.
      name: 'lazy-child-process',
      setup(b) {
        b.onResolve({ filter: /^node:child_process$/ }, (a) => (a.kind === 'require-call' && /[\\/]commander[\\/]/.test(a.importer) ? { path: a.path, namespace: 'lazy' } : undefined));
        b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
          contents: "module.exports = new Proxy({}, { get: (_, k) => require('node:child_process')[k] });",
          loader: 'js',
        }));
      },
    },
    {
      // Node's built-ins through require(), not ESM imports: an ESM import of a built-in reads every export to build its
      // namespace, getters included, and node:http's WebSocket/CloseEvent/MessageEvent getters load undici (with
      // crypto, tls, http2, zlib, worker_threads): ≈40 ms of each `silo run`. require() reads an export when used.
      name: 'builtins-by-require',
      setup(b) {
        b.onResolve({ filter: /^node:/ }, (a) => (a.kind === 'import-statement' || a.kind === 'dynamic-import' ? { path: a.path, namespace: 'builtin' } : undefined));
        b.onLoad({ filter: /.*/, namespace: 'builtin' }, (a) => ({ contents: `module.exports = require(${JSON.stringify(a.path)});`, loader: 'js' }));
      },
    },
    {
      name: 'daemon-entry',
      setup(b) {
        // From dist/cli/, the daemon's bundle.
        b.onResolve({ filter: /\/commands\/daemon\.js$/ }, () => ({ path: '../daemon/daemon.mjs', external: true }));
      },
    },
    {
      // cp and export need tar-stream and the extractor (~100 KB): loaded as compiled when they run, so the bundle
      // every `silo run` parses does not carry them.
      name: 'cp-compiled',
      setup(b) {
        b.onResolve({ filter: /\/commands\/cp\.js$/ }, () => ({ path: '../src/cli/commands/cp.js', external: true }));
      },
    },
  ],
});
