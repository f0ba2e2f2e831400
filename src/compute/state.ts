// The compute system lifecycle as an explicit table: an operation not allowed in the current state fails with a
// FailedPrecondition that names the state, never with a crash further down.

import { badState } from '../common/errors.js';
import type { SystemState } from './types.js';

export type Operation = 'start' | 'shutdown' | 'terminate' | 'signal' | 'pause' | 'resume' | 'exec' | 'modify' | 'remove' | 'commit' | 'attach' | 'resize' | 'properties';

const allowed: Record<Operation, readonly SystemState[]> = {
  start: ['Created', 'Stopped'],
  shutdown: ['Running', 'Paused', 'Created', 'Stopped'],
  terminate: ['Running', 'Paused', 'Created', 'Stopped'],
  signal: ['Running'],
  pause: ['Running'],
  resume: ['Paused'],
  exec: ['Running'],
  modify: ['Created', 'Running', 'Paused', 'Stopped'],
  remove: ['Created', 'Stopped'],
  commit: ['Created', 'Running', 'Paused', 'Stopped'],
  attach: ['Created', 'Running', 'Paused', 'Stopped'],
  resize: ['Running', 'Paused'],
  properties: ['Created', 'Running', 'Paused', 'Stopped'],
};

const words: Partial<Record<Operation, Partial<Record<SystemState, string>>>> = {
  start: { Running: 'is already running', Paused: 'is paused; unpause it instead' },
  signal: { Created: 'is not running', Stopped: 'is not running', Paused: 'is paused; unpause it first' },
  pause: { Paused: 'is already paused', Created: 'is not running', Stopped: 'is not running' },
  resume: { Running: 'is not paused', Created: 'is not paused', Stopped: 'is not paused' },
  exec: { Created: 'is not running', Stopped: 'is not running', Paused: 'is paused, unpause the container before exec' },
  remove: {
    Running: 'is running: stop the container before removing or force remove',
    Paused: 'is paused: unpause and stop the container before removing or force remove',
  },
  resize: { Created: 'is not running', Stopped: 'is not running' },
};

/** Throw unless `op` may run on a system in `state`. */
export function check(op: Operation, state: SystemState, name: string): void {
  if (allowed[op].includes(state)) return;
  const why = words[op]?.[state] ?? `is in state ${state}`;
  throw badState(`cannot ${op} container ${name}: container ${why} (state ${state})`);
}

export const isActive = (s: SystemState) => s === 'Running' || s === 'Paused';
