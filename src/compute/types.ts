// Compute systems as documents shaped after HCS schema 2.1 (../shared/reference/hcs-hns.md §1).

import type { Isolation, MappedDirectory, ProcessInfo, Statistics } from './backend.js';
import type { CreateSpec, HealthCheck, ProcessParameters as SpecProcess, RestartPolicy, SpecContainer } from './spec/schema.js';

/** States of a compute system; transitions are in state.ts. */
export type SystemState = 'Created' | 'Running' | 'Paused' | 'Stopped';

export type { Networking } from './spec/schema.js';
/** A process to run (exec); the command is required here, optional in a create spec (the image has one). */
export type ProcessParameters = SpecProcess & { CommandArgs: string[] };

export interface ComputeSystemDocument {
  Owner: string;
  SchemaVersion: { Major: 2; Minor: 1 };
  Isolation: Isolation;
  Container: {
    GuestOs: { HostName: string };
    Storage: { Image: string; ImageId?: string; Layers?: { Id: string; Path: string }[]; ScratchSizeInBytes?: number; ScratchInMemory?: boolean };
    MappedDirectories?: MappedDirectory[];
  } & Omit<SpecContainer, 'GuestOs' | 'Storage' | 'MappedDirectories'>;
  /** The init process; unset fields come from the image config. */
  Process: Partial<ProcessParameters> & { Entrypoint?: string[] };
  StopSignal?: string;
  StopTimeoutSeconds?: number;
  AutoRemove?: boolean;
  /** Run a tiny init (tini) as PID 1 that reaps zombies and forwards signals to the command (docker's --init). */
  Init?: boolean;
  /** What to do when the init process exits: docker's policies. */
  RestartPolicy?: RestartPolicy;
  /** The probe that makes it healthy or unhealthy (health.ts); from the image's HEALTHCHECK unless given. */
  HealthCheck?: HealthCheck;
  Labels?: Record<string, string>;
  /** vm: the system whose utility VM this one runs in (HCS's HostingSystemId), by id. */
  HostingSystemId?: string;
  /** vm: its utility VM; KernelPackage: the Debian kernel package it boots instead of the default guest kernel;
   *  HostedMounts: the systems it hosts may have bind mounts (a pod's VM: a virtiofs share, shared guest RAM). */
  VirtualMachine?: { KernelPackage?: string; HostedMounts?: boolean };
}

export type { RestartPolicy } from './spec/schema.js';

/** What a create request carries: the one create specification every front door maps onto (spec/schema.ts). */
export type CreateSystemRequest = CreateSpec;

/** The stored record of a compute system (one JSON document per system under the state dir). */
export interface ComputeSystemRecord {
  Id: string;
  Name: string;
  Created: string;
  State: SystemState;
  Document: ComputeSystemDocument;
  /** The init process as resolved from document + image. */
  Init: { Args: string[]; Env: string[]; Cwd: string; User: string; Tty: boolean; Stdin: boolean; StdinOnce?: boolean };
  ImageId: string;
  ImageName: string;
  Pid?: number;
  StartedAt?: string;
  FinishedAt?: string;
  ExitCode?: number;
  OOMKilled?: boolean;
  /** Why the system was ended by Silo rather than by its process (docker's State.Error), e.g. its monitor died. */
  Error?: string;
  RestartCount: number;
  /** Stopped by a user (stop, kill, terminate): `unless-stopped` and `always` do not bring it back then. */
  StoppedByUser?: boolean;
}

export interface ExecRecord {
  Id: string;
  SystemId: string;
  Process: ProcessParameters;
  Running: boolean;
  ExitCode?: number;
  Pid?: number;
}

export interface SystemProperties {
  Statistics?: Statistics;
  ProcessList?: ProcessInfo[];
}

export type { Isolation, MappedDirectory, Statistics, ProcessInfo };

/** A utility VM template of the vm isolation backend, as `silo vm template ls` shows it (docs/vm.md). */
/** A guest kernel made for containers that name it (`silo vm kernel ls`). */
export interface VmKernelInfo {
  /** The Debian kernel package, as `--vm-kernel` names it. */
  Package: string;
  Version: string;
  /** Its `uname -r`. */
  Release: string;
  /** Its files on disk (vmlinux, modules, initramfs). */
  DiskBytes: number;
  Created: string;
  /** Containers whose document names it, in any state. */
  Containers: number;
}

export interface VmTemplateInfo {
  /** Its directory's name under the backend's templates: a hash of its inputs and VM size. */
  Key: string;
  MemoryMiB: number;
  Cpus: number;
  /** Its RAM file's blocks on disk (the file is sparse). */
  DiskBytes: number;
  Created: string;
  /** The Debian kernel package it boots; none: the default guest kernel. */
  Kernel?: string;
}
