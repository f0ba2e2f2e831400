// Pod sandboxes and their containers outlive the daemon: after a SIGKILL and a restart the CRI lists them as they
// were, from the compute service's records, and exec, logs, stop and remove work on them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './harness.js';
import { remoteCommand } from './cri-client.js';
import { criFixture } from './cri-fixture.js';

const { d, logDir, c, restarted } = criFixture('cri-restart');

test('SIGKILL of the daemon: the pod, its containers, their logs and streams are there after the restart', async () => {
  const podConfig = { metadata: { name: 'keep', uid: 'k-1', namespace: 'ns', attempt: 0 }, hostname: 'keep', log_directory: logDir, labels: { app: 'keep' } };
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config: podConfig });
  const { container_id: ctr } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: podConfig,
    config: { metadata: { name: 'counter', attempt: 0 }, image: { image: 'busybox' }, command: ['sh', '-c', 'i=0; while true; do echo n$i; i=$((i+1)); sleep 0.1; done'], log_path: 'counter.log', labels: { k: 'v' } },
  });
  await c.runtime.StartContainer({ container_id: ctr });
  const { container_id: done } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: podConfig,
    config: { metadata: { name: 'ends', attempt: 0 }, image: { image: 'busybox' }, command: ['sh', '-c', 'sleep 1; exit 3'], log_path: 'ends.log' },
  });
  await c.runtime.StartContainer({ container_id: done });
  await sleep(300);

  c.close();
  await d.kill();
  await sleep(1500); // `ends` exits while no daemon runs; the counter goes on
  await d.start();
  restarted();

  const pods = await c.runtime.ListPodSandbox({ filter: { label_selector: { app: 'keep' } } });
  assert.deepEqual(pods.items.map((p: { id: string; state: string }) => [p.id, p.state]), [[pod, 'SANDBOX_READY']]);
  const ctrs = await c.runtime.ListContainers({ filter: { pod_sandbox_id: pod } });
  assert.equal(ctrs.containers.length, 2);
  assert.equal((await c.runtime.ContainerStatus({ container_id: ctr })).status.state, 'CONTAINER_RUNNING');
  const ended = (await c.runtime.ContainerStatus({ container_id: done })).status;
  assert.equal(ended.state, 'CONTAINER_EXITED');
  assert.equal(ended.exit_code, 3);

  // The log went on while the daemon was away: consecutive numbers, no gap.
  await sleep(300);
  const nums = readFileSync(join(logDir, 'counter.log'), 'utf8').split('\n').flatMap((l) => /stdout F n(\d+)$/.exec(l)?.[1] ?? []).map(Number);
  assert.ok(nums.length > 15, `${nums.length} lines`);
  nums.forEach((n, i) => assert.equal(n, i));

  assert.equal((await c.runtime.ExecSync({ container_id: ctr, cmd: ['hostname'], timeout: 5 })).stdout.toString(), 'keep\n');
  const ex = await c.runtime.Exec({ container_id: ctr, cmd: ['echo', 'after restart'], stdout: true, stderr: true });
  assert.equal((await remoteCommand(ex.url)).stdout, 'after restart\n');

  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  assert.equal((await c.runtime.ListContainers({})).containers.length, 0);
});
