import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIgnored } from '../../src/api/docker/build/ignore.js';

test('.dockerignore patterns: globs, ** across directories, ! exceptions, parent directories, the last line wins', () => {
  const t = '# comment\nlogs/*.log\n!logs/important.log\nsecret.env\n**/*.tmp\nbuild/\n.dockerfile.abc\n';
  assert.equal(isIgnored(t, 'logs/a.log'), true);
  assert.equal(isIgnored(t, 'logs/important.log'), false);
  assert.equal(isIgnored(t, 'secret.env'), true);
  assert.equal(isIgnored(t, 'a/b/c.tmp'), true);
  assert.equal(isIgnored(t, 'c.tmp'), true);
  assert.equal(isIgnored(t, 'build/out/x'), true);
  assert.equal(isIgnored(t, '.dockerfile.abc'), true);
  assert.equal(isIgnored(t, 'Dockerfile'), false);
  assert.equal(isIgnored(t, '.dockerignore'), false);
  assert.equal(isIgnored('*\n!keep\n', 'keep'), false);
  assert.equal(isIgnored('*\n!keep\n', '.dockerignore'), true);
  assert.equal(isIgnored('/Dockerfile\n', './Dockerfile'), true);
  assert.equal(isIgnored('file.txt\n', 'file_txt'), false);
});
