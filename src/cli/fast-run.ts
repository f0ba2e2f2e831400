// The simplest `silo run`s parsed without commander (≈8 ms of CPU to load it and define run's sixty options): only
// `run`, then flags from a few booleans, then the image and the command. Anything else (another verb, -H, a value
// option, --help, an unknown flag, no image) returns undefined and commander parses it. What this returns equals
// commander's parse of the same words (test/unit/cli-fast-run.test.ts holds them to it).

import type { RunFlags } from './commands/run.js';

const BOOLEANS: Record<string, 'rm' | 'detach' | 'interactive' | 'tty' | 'init' | 'readOnly' | 'privileged'> = {
  '--rm': 'rm',
  '-d': 'detach',
  '--detach': 'detach',
  '-i': 'interactive',
  '--interactive': 'interactive',
  '-t': 'tty',
  '--tty': 'tty',
  '--init': 'init',
  '--read-only': 'readOnly',
  '--privileged': 'privileged',
};

export interface SimpleRun {
  image: string;
  command: string[];
  flags: RunFlags;
}

/** `argv` (after node and the script) → run's image, command and flags, or undefined: commander's to parse. */
export function simpleRun(argv: string[]): SimpleRun | undefined {
  if (argv[0] !== 'run') return undefined;
  const flags: RunFlags = { sigProxy: 'true' }; // run's default, as commander sets it
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) return { image: a, command: argv.slice(i + 1), flags };
    const combined = /^-([dit]{2,})$/.exec(a); // -it, -dit
    for (const f of combined ? [...combined[1]].map((c) => `-${c}`) : [a]) {
      const k = BOOLEANS[f];
      if (!k) return undefined;
      flags[k] = true;
    }
  }
  return undefined;
}
