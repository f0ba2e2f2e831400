// Named fault points for crash tests: with SILO_FAULT_POINTS=a,b in the environment the process SIGKILLs itself when
// it reaches one of them. Unset in normal use, where a fault point costs one Set lookup.

const armed = new Set((process.env.SILO_FAULT_POINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean));

export function faultPoint(name: string): void {
  if (armed.size && armed.has(name)) process.kill(process.pid, 'SIGKILL');
}

/** Every fault point Silo has, so tests can walk them all. */
export const FAULT_POINTS = [
  'create.after-record',
  'create.after-mount',
  'create.after-network',
  'start.after-runtime-create',
  'remove.after-runtime-delete',
  'remove.after-network',
  'import.before-publish',
  'import.after-publish',
  'commit.after-publish',
  'load.after-blob',
  'load.after-publish',
  'gc.before-layer-delete',
  'network.create.after-record',
  'network.create.after-bridge',
  'network.remove.after-bridge',
  'build.after-step-start',
  'build.after-step-commit',
  'pull.before-image',
  'vm.template.after-save',
  'vm.shares.after-start',
  'vm.spare.after-claim',
  'vm.guest.after-plug',
  'vm.guest.after-bind',
  'vm.kernel.before-rename',
] as const;
