// `silo`: the simplest `silo run`s (booleans, image, command: `run --rm busybox true`) go straight to the verb; the
// rest to commander (program.ts). Start-up is part of every `silo run`.

import { describe } from './errors.js';
import { simpleRun } from './fast-run.js';

const fast = simpleRun(process.argv.slice(2));
if (fast) {
  let exitCode: number;
  try {
    exitCode = await (await import('./commands/run.js')).run(fast.image, fast.command, fast.flags);
  } catch (e) {
    const d = describe(e);
    process.stderr.write(`${d.line}\n`);
    exitCode = d.code;
  }
  process.stdout.write('', () => process.exit(exitCode));
} else await import('./program.js');
