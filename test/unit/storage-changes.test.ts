import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges, applyInstruction, splitWords } from '../../src/storage/changes.js';

test('splitWords honours quotes and escapes', () => {
  assert.deepEqual(splitWords(`a "b c" 'd e' f\\ g h="i j"`), ['a', 'b c', 'd e', 'f g', 'h=i j']);
  assert.throws(() => splitWords('"open'), /unterminated/);
});

test('CMD and ENTRYPOINT: JSON and shell forms', () => {
  assert.deepEqual(applyChanges({}, ['CMD ["sh", "-c", "echo hi"]']).Cmd, ['sh', '-c', 'echo hi']);
  assert.deepEqual(applyChanges({}, ['CMD echo hi']).Cmd, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(applyChanges({}, ['entrypoint ["/bin/app"]']).Entrypoint, ['/bin/app']);
  assert.deepEqual(applyChanges({}, ['ENTRYPOINT /bin/app --x']).Entrypoint, ['/bin/sh', '-c', '/bin/app --x']);
  assert.deepEqual(applyChanges({}, ['CMD [not json']).Cmd, ['/bin/sh', '-c', '[not json']);
});

test('ENV: k=v, several pairs, quoted, legacy "k v", replacing', () => {
  const c = applyChanges({ Env: ['PATH=/bin', 'A=old'] }, ['ENV A=1 B="two words"', 'ENV C some value', 'ENV PATH=/usr/bin']);
  assert.deepEqual(c.Env, ['A=1', 'B=two words', 'C=some value', 'PATH=/usr/bin']);
});

test('WORKDIR USER EXPOSE LABEL STOPSIGNAL VOLUME', () => {
  const c = applyChanges({}, [
    'WORKDIR /app',
    'WORKDIR sub',
    'USER nobody:nogroup',
    'EXPOSE 80 53/udp 8000-8001',
    'LABEL a=b "c d"=e',
    'STOPSIGNAL SIGTERM',
    'VOLUME ["/data", "/logs"]',
    'VOLUME /more',
  ]);
  assert.equal(c.WorkingDir, '/app/sub');
  assert.equal(c.User, 'nobody:nogroup');
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
  assert.deepEqual(c.Labels, { a: 'b', 'c d': 'e' });
  assert.equal(c.StopSignal, 'SIGTERM');
  assert.deepEqual(Object.keys(c.Volumes!), ['/data', '/logs', '/more']);
});

test('does not mutate the input config', () => {
  const base = { Env: ['A=1'], Labels: { x: 'y' } };
  applyChanges(base, ['ENV A=2', 'LABEL x=z']);
  assert.deepEqual(base, { Env: ['A=1'], Labels: { x: 'y' } });
});

test('unknown or malformed instructions are InvalidArgument', () => {
  for (const bad of ['RUN echo', 'FROM x', 'ADD a b', 'COPY a b', 'CMD', 'EXPOSE http', 'EXPOSE 70000', 'ENV', 'ENV =x', 'ENV novalue', 'STOPSIGNAL bad sig', '']) {
    assert.throws(() => applyChanges({}, [bad]), (e: any) => e.class === 'InvalidArgument', bad);
  }
});

test('the builder\'s metadata steps go through the same interpreter, with its variables', () => {
  const vars = new Map([['V', '1'], ['DIR', 'app']]);
  const expand = (s: string) => s.replace(/\$(\w+)/g, (_, k: string) => vars.get(k) ?? '');
  let c = applyInstruction({}, { cmd: 'ENV', rest: 'A=$V B="x y"' }, expand);
  assert.deepEqual(c.Env, ['A=1', 'B=x y']);
  c = applyInstruction(c, { cmd: 'WORKDIR', rest: '/srv/$DIR/../x' }, expand);
  assert.equal(c.WorkingDir, '/srv/x');
  c = applyInstruction(c, { cmd: 'LABEL', rest: 'k$V=v$V' }, expand);
  assert.deepEqual(c.Labels, { k1: 'v1' });
  // SHELL changes the shell form of CMD; CMD keeps its text for the container's shell to expand.
  c = applyInstruction(c, { cmd: 'SHELL', rest: '["/bin/ash", "-e", "-c"]', json: ['/bin/ash', '-e', '-c'] }, expand);
  c = applyInstruction(c, { cmd: 'CMD', rest: 'echo $V' }, expand);
  assert.deepEqual(c.Cmd, ['/bin/ash', '-e', '-c', 'echo $V']);
  assert.deepEqual(applyInstruction(c, { cmd: 'EXPOSE', rest: '$V-2/UDP' }, expand).ExposedPorts, { '1/udp': {}, '2/udp': {} });
  assert.deepEqual(applyInstruction(c, { cmd: 'MAINTAINER', rest: 'someone' }), c);
  for (const bad of [{ cmd: 'SHELL', rest: 'sh -c' }, { cmd: 'EXPOSE', rest: 'http' }, { cmd: 'ENV', rest: 'A=1 B' }, { cmd: 'RUN', rest: 'true' }]) {
    assert.throws(() => applyInstruction({}, bad), (e: any) => e.class === 'InvalidArgument', bad.cmd);
  }
  // --change takes docker's list only: SHELL and MAINTAINER are the builder's.
  for (const bad of ['SHELL ["sh", "-c"]', 'MAINTAINER me']) assert.throws(() => applyChanges({}, [bad]), /unsupported change instruction/);
});
