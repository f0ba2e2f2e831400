// The create specification's pod fields through the native API, end to end: a member joins a sandbox's network,
// PID and IPC namespaces; a security context (capabilities, seccomp, read-only root, run-as user and groups,
// no-new-privileges) holds in the init process; the log goes to the caller's path in CRI format; privileged and
// host namespaces; what cannot be honoured is refused with a 400.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TestDaemon, sleep } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
let dir: string;
const api = (method: string, path: string, json?: unknown) => request(d.socket, method, path, json === undefined ? {} : { json });

async function run(doc: Record<string, unknown>, name?: string): Promise<string> {
  const c = await api('POST', '/v1/systems', { Image: 'busybox', ...(name ? { Name: name } : {}), Document: doc });
  assert.equal(c.status, 201, c.body.toString());
  const s = await api('POST', `/v1/systems/${c.json.Id}/start`);
  assert.equal(s.status, 204, s.body.toString());
  return c.json.Id;
}

async function waitFor(file: string, re: RegExp): Promise<string> {
  let text = '';
  for (let i = 0; i < 100 && !re.test(text); i++) {
    text = await readFile(file, 'utf8').catch(() => '');
    if (!re.test(text)) await sleep(50);
  }
  return text;
}

const exec = async (id: string, cmd: string[]) => (await d.silo(['exec', id, ...cmd])).stdout;

before(async () => {
  await d.start();
  dir = await mkdtemp(join(tmpdir(), 'silo-spec-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(await d.teardown(), []);
});

const STATUS = 'grep -E "^(Uid|Gid|Groups|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; touch /x 2>&1 | sed "s/.*: //"';

test('a member joins its sandbox\'s namespaces, with a security context and a CRI log at the caller\'s path', async () => {
  const sandbox = await run({ Process: { CommandArgs: ['sleep', '1000'] } }, 'pod-sandbox');
  const profile = join(dir, 'seccomp.json');
  await writeFile(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
  const log = join(dir, 'member_0.log');
  const member = await run({
    Container: {
      Namespaces: { Network: { Mode: 'system', Target: 'pod-sandbox' }, Pid: { Mode: 'system', Target: sandbox }, Ipc: { Mode: 'system', Target: sandbox } },
      Security: { CapDrop: ['ALL'], CapAdd: ['NET_BIND_SERVICE'], ReadOnlyRoot: true, RunAsUser: 1000, RunAsGroup: 1000, SupplementalGroups: [2000, 'nogroup'], NoNewPrivileges: true, Seccomp: { Profile: 'localhost', LocalhostPath: profile } },
      Logging: { Path: log },
    },
    Process: { CommandArgs: ['sh', '-c', `${STATUS}; mkdir /tmp/d 2>&1 | sed "s/.*: //"; echo hello; printf partial; sleep 1000`] },
  });
  const text = await waitFor(log, / stdout P partial\n/);
  const lines = text.trimEnd().split('\n');
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stdout [FP] /, l);
  const data = lines.map((l) => l.split(' ').slice(3).join(' '));
  assert.ok(data.includes('Uid:\t1000\t1000\t1000\t1000') && data.includes('Gid:\t1000\t1000\t1000\t1000'), text);
  assert.ok(data.includes('Groups:\t1000 2000 65534 '), text); // the primary group among them, as containerd and dockerd do
  assert.ok(data.includes('CapBnd:\t0000000000000400') && data.includes('NoNewPrivs:\t1') && data.includes('Seccomp:\t2'), text);
  assert.ok(data.includes('Read-only file system'), text);
  assert.ok(data.includes('Operation not permitted'), text); // the localhost profile's EPERM for mkdir
  assert.deepEqual(data.slice(-2), ['hello', 'partial']);
  assert.match(lines.at(-2)!, / stdout F hello$/);
  // One network, PID and IPC namespace: the member sees the sandbox's sleep and shares its interfaces.
  for (const ns of ['net', 'pid', 'ipc']) {
    const mine = await exec(member, ['readlink', `/proc/self/ns/${ns}`]);
    assert.match(mine, /^\w+:\[\d+\]\n$/);
    assert.equal(mine, await exec(sandbox, ['readlink', `/proc/self/ns/${ns}`]));
  }
  assert.notEqual(await exec(member, ['readlink', '/proc/self/ns/uts']), await exec(sandbox, ['readlink', '/proc/self/ns/uts']));
  assert.equal((await exec(member, ['ps', '-o', 'args'])).match(/^sleep 1000$/gm)?.length, 2); // the sandbox's and its own
  // The native API's logs read the caller's file.
  const l = await d.silo(['logs', member]);
  assert.match(l.stdout, /hello\npartial/);
  // Removing the member leaves the caller's log where it is.
  assert.equal((await d.silo(['rm', '-f', member, sandbox])).code, 0);
  assert.match(await readFile(log, 'utf8'), /hello/);
});

test('host PID namespace, unconfined seccomp and privileged', async () => {
  const host = await run({ Container: { Namespaces: { Pid: { Mode: 'host' } }, Security: { Seccomp: { Profile: 'unconfined' } } }, Process: { CommandArgs: ['sleep', '1000'] } });
  assert.equal(await exec(host, ['cat', `/proc/${process.pid}/comm`]), await readFile(`/proc/${process.pid}/comm`, 'utf8'));
  assert.match(await exec(host, ['grep', 'Seccomp:', '/proc/self/status']), /Seccomp:\t0/);
  const priv = await run({ Container: { Security: { Privileged: true } }, Process: { CommandArgs: ['sleep', '1000'] } });
  const own = (await readFile('/proc/self/status', 'utf8')).match(/CapBnd:\t(\w+)/)![1];
  const st = await exec(priv, ['cat', '/proc/self/status']);
  assert.equal(st.match(/CapBnd:\t(\w+)/)![1], own);
  assert.match(st, /Seccomp:\t0/);
  assert.match(st, /NoNewPrivs:\t0/);
  assert.equal((await d.silo(['exec', priv, 'test', '-c', '/dev/loop-control'])).code, 0);
  assert.equal(await exec(priv, ['grep', '-c', ' /proc/keys ', '/proc/self/mounts']), '0\n'); // not masked
  assert.equal(await exec(host, ['grep', '-c', ' /proc/keys ', '/proc/self/mounts']), '1\n');
  assert.equal((await d.silo(['rm', '-f', host, priv])).code, 0);
});

test('the silo CLI maps its flags onto the same specification', async () => {
  const s = await d.silo(['run', '-d', '--name', 'cli-target', 'busybox', 'sleep', '1000']);
  assert.equal(s.code, 0, s.stderr);
  const r = await d.silo(['run', '--rm', '--read-only', '--cap-drop', 'ALL', '--cap-add', 'KILL', '--tmpfs', '/w:size=1m', '--pid', 'container:cli-target',
    '--network', 'container:cli-target', '--ulimit', 'nproc=50:60', '--group-add', '3000', '--shm-size', '8m', '--security-opt', 'seccomp=unconfined', 'busybox', 'sh', '-c',
    'grep -E "^(CapBnd|Seccomp|Groups):" /proc/self/status; df -k /w /dev/shm | tail -2 | awk \'{print $2}\'; grep "Max processes" /proc/self/limits | awk \'{print $3, $4}\'; ps -o args | grep -c "^sleep 1000"; touch /x 2>&1 | sed "s/.*: //"']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Groups:\t0 3000 \nCapBnd:\t0000000000000020\nSeccomp:\t0\n1024\n8192\n50 60\n1\nRead-only file system\n');
  const bad = await d.silo(['run', '--rm', '--cap-add', 'SYS_RESOURCE', 'busybox', 'true']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /CAP_SYS_RESOURCE cannot be granted/);
  assert.equal((await d.silo(['rm', '-f', 'cli-target'])).code, 0);
});

test('what cannot be honoured is refused with a one-line 400 and nothing is made', async () => {
  const bad = async (doc: unknown, re: RegExp) => {
    const r = await api('POST', '/v1/systems', { Image: 'busybox', Document: doc });
    assert.equal(r.status, 400, r.body.toString());
    assert.match(r.json.message, re);
    assert.doesNotMatch(r.json.message, /\n/);
  };
  await bad({ Container: { Security: { Apparmor: 'x' } } }, /Apparmor|additional/i);
  await bad({ Container: { Security: { CapAdd: ['SYS_RESOURCE'] } } }, /CAP_SYS_RESOURCE cannot be granted/);
  await bad({ Container: { Security: { CapAdd: ['NOT_A_CAP'] } } }, /unknown capability/);
  await bad({ Container: { Security: { RunAsGroup: 5 } } }, /RunAsGroup needs/);
  await bad({ Container: { Security: { Seccomp: { Profile: 'localhost', LocalhostPath: join(dir, 'none.json') } } } }, /no profile file/);
  await bad({ Container: { Namespaces: { Pid: { Mode: 'system' } } } }, /needs a Target/);
  await bad({ Container: { Namespaces: { Network: { Mode: 'host' } }, Networking: { PortMappings: [{ Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 }] } } }, /conflicting options/);
  await bad({ Container: { Logging: { Path: '/no/such/dir/x.log' } } }, /does not exist/);
  await bad({ Container: { Namespaces: { Ipc: { Mode: 'system', Target: 'no-such-system' } } } }, /no such/);
  assert.equal((await d.silo(['ps', '-aq'])).stdout, '');
});
