import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyValues, parseDockerfile, splitWords, substitute } from '../../src/api/docker/build/dockerfile.js';

test('instructions, continuations, comments, flags and JSON forms', () => {
  const d = parseDockerfile('# syntax comment\nFROM busybox AS base\n\n# a comment\nRUN echo a \\\n  && echo b\nCOPY --chown=1:2 --from=base a b /dst/\nCMD ["httpd", "-f"]\nentrypoint sh -c x\n');
  assert.deepEqual(d.map((i) => i.cmd), ['FROM', 'RUN', 'COPY', 'CMD', 'ENTRYPOINT']);
  assert.equal(d[1].rest, 'echo a   && echo b');
  assert.deepEqual(d[2].flags, { chown: '1:2', from: 'base' });
  assert.equal(d[2].rest, 'a b /dst/');
  assert.deepEqual(d[3].json, ['httpd', '-f']);
  assert.equal(d[4].json, undefined);
  assert.equal(d[0].line, 2);
});

test('escape directive and errors', () => {
  const d = parseDockerfile('# escape=`\nFROM x\nRUN a `\n b\n');
  assert.equal(d[1].rest, 'a  b');
  assert.throws(() => parseDockerfile('FROM x\nFOO bar\n'), /unknown instruction: FOO/);
  assert.throws(() => parseDockerfile('# only a comment\n'), /cannot be empty/);
});

test('variable substitution', () => {
  const v = new Map([['A', '1'], ['EMPTY', '']]);
  assert.equal(substitute('$A ${A} ${B:-def} ${A:+set} ${EMPTY:-e} \\$A', v), '1 1 def set e $A');
  assert.equal(substitute("'$A' $A", v), "'$A' 1");
});

test('key=value pairs and words', () => {
  assert.deepEqual(keyValues('A=1 B="two words"'), [['A', '1'], ['B', 'two words']]);
  assert.deepEqual(keyValues('A legacy form'), [['A', 'legacy form']]);
  assert.deepEqual(splitWords(`a "b c" 'd'`), ['a', 'b c', 'd']);
});
