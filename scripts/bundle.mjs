// The `silo` CLI as one bundle (dist/cli/): commander and Silo's CLI code in a few files instead of ~15 modules, split
// at each verb's dynamic import so a verb loads only its own code. The daemon is not bundled here: `silo daemon`
// imports the compiled daemon (dist/src/cli/commands/daemon.js) as its own entry. Run by scripts/setup.sh after tsc.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

await rm('dist/cli', { recursive: true, force: true });
await build({
  entryPoints: { main: 'dist/src/cli/main.js' },
  outdir: 'dist/cli',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  logLevel: 'warning',
  // commander is CommonJS and requires Node's built-ins.
  banner: { js: "import { createRequire as __silo_cr } from 'node:module'; const require = __silo_cr(import.meta.url);" },
  plugins: [
    {
      name: 'daemon-entry',
      setup(b) {
        // From dist/cli/, the daemon's own compiled entry.
        b.onResolve({ filter: /\/commands\/daemon\.js$/ }, () => ({ path: '../src/cli/commands/daemon.js', external: true }));
      },
    },
  ],
});
