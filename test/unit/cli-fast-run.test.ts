// main.ts's fast path for the simplest `silo run`s: what it parses equals commander's parse with run's own options,
// and everything else is left to commander.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { simpleRun } from '../../src/cli/fast-run.js';
import { runOptions } from '../../src/cli/run-options.js';

/** What program.ts's commander hands run's action for these words. */
async function commanderParse(argv: string[]): Promise<{ image: string; command: string[]; flags: unknown }> {
  let got: { image: string; command: string[]; flags: unknown } | undefined;
  const program = new Command('silo').option('-H, --host <url>').enablePositionalOptions().exitOverride();
  runOptions(program.command('run')).action((image: string, command: string[], flags: unknown) => {
    got = { image, command, flags };
  });
  await program.parseAsync(argv, { from: 'user' });
  return got!;
}

test('the fast path parses as commander does', async () => {
  for (const argv of [
    ['run', '--rm', 'busybox', 'true'],
    ['run', 'busybox'],
    ['run', '-it', 'busybox', 'sh'],
    ['run', '-ti', '--rm', 'busybox'],
    ['run', '-dit', '--rm', 'busybox', 'sleep', '1'],
    ['run', '--rm', '-d', '--init', '--read-only', '--privileged', 'busybox', 'ls', '-l', '--rm', '--name', 'x'],
    ['run', '-t', '-i', '--interactive', '--tty', '--detach', 'registry.local:5000/img:tag', '--help', '-H', 'x'],
  ]) {
    const fast = simpleRun(argv);
    assert.ok(fast, argv.join(' '));
    assert.deepEqual(fast, await commanderParse(argv), argv.join(' '));
  }
});

test('everything else is left to commander', () => {
  for (const argv of [
    [],
    ['ps'],
    ['create', 'busybox'],
    ['-H', 'unix:///x', 'run', 'busybox'],
    ['run'],
    ['run', '--rm'],
    ['run', '--help'],
    ['run', '--name', 'x', 'busybox'],
    ['run', '--name=x', 'busybox'],
    ['run', '-e', 'A=1', 'busybox'],
    ['run', '-eA=1', 'busybox'],
    ['run', '--sig-proxy=false', 'busybox'],
    ['run', '-x', 'busybox'],
    ['run', '-itx', 'busybox'],
    ['run', '--', 'busybox'],
    ['run', '-', 'busybox'],
    ['run', '--rm=true', 'busybox'],
  ])
    assert.equal(simpleRun(argv), undefined, argv.join(' '));
});
