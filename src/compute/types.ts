// Compute systems as documents shaped after HCS schema 2.1 (../shared/reference/hcs-hns.md §1).

import type { Isolation, MappedDirectory, ProcessInfo, Statistics } from './backend.js';

/** States of a compute system; transitions are in state.ts. */
export type SystemState = 'Created' | 'Running' | 'Paused' | 'Stopped';

export interface ProcessParameters {
  CommandArgs: string[];
  WorkingDirectory?: string;
  Environment?: Record<string, string>;
  User?: string;
  EmulateConsole?: boolean; // tty
  CreateStdInPipe?: boolean;
  ConsoleSize?: [number, number]; // [rows, cols]
}

/** How a compute system is networked. The compute service asks the network service for a namespace and endpoint. */
export interface Networking {
  /** "none" = an empty namespace (loopback only); a network name or id; absent = the default nat network. */
  Network?: string;
  /** A fixed address in the network's subnet. */
  IpAddress?: string;
  /** More names other containers on the network resolve to this one. */
  Aliases?: string[];
  /** Published ports (HNS PortMapping policies on its endpoint). */
  PortMappings?: { Protocol: 'tcp' | 'udp'; InternalPort: number; ExternalPort: number; HostIp?: string }[];
  /** Filled in by the compute service: the HCN namespace and endpoints the system joined. */
  Namespace?: string;
  Endpoints?: string[];
}

export interface ComputeSystemDocument {
  Owner: string;
  SchemaVersion: { Major: 2; Minor: 1 };
  Isolation: Isolation;
  Container: {
    GuestOs: { HostName: string };
    Storage: { Image: string; ImageId?: string; Layers?: { Id: string; Path: string }[]; ScratchSizeInBytes?: number };
    MappedDirectories?: MappedDirectory[];
    Memory?: { SizeInMB: number };
    Processor?: { Count?: number; Maximum?: number; Weight?: number };
    Pids?: { Limit: number };
    Networking?: Networking;
  };
  /** The init process; unset fields come from the image config. */
  Process: Partial<ProcessParameters> & { Entrypoint?: string[] };
  StopSignal?: string;
  StopTimeoutSeconds?: number;
  AutoRemove?: boolean;
  /** Run a tiny init (tini) as PID 1 that reaps zombies and forwards signals to the command (docker's --init). */
  Init?: boolean;
  /** What to do when the init process exits: docker's policies. */
  RestartPolicy?: RestartPolicy;
  Labels?: Record<string, string>;
}

export interface RestartPolicy {
  Name: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  /** on-failure only: give up after this many restarts; 0 = never give up. */
  MaximumRetryCount?: number;
}

/** What a create request carries (native API and CLI). */
export interface CreateSystemRequest {
  Name?: string;
  Image: string;
  Document?: Partial<Omit<ComputeSystemDocument, 'Container' | 'Process'>> & {
    Container?: Partial<Omit<ComputeSystemDocument['Container'], 'Storage'>> & { Storage?: { ScratchSizeInBytes?: number } };
    Process?: ComputeSystemDocument['Process'];
  };
}

/** The stored record of a compute system (one JSON document per system under the state dir). */
export interface ComputeSystemRecord {
  Id: string;
  Name: string;
  Created: string;
  State: SystemState;
  Document: ComputeSystemDocument;
  /** The init process as resolved from document + image. */
  Init: { Args: string[]; Env: string[]; Cwd: string; User: string; Tty: boolean; Stdin: boolean };
  ImageId: string;
  ImageName: string;
  Pid?: number;
  StartedAt?: string;
  FinishedAt?: string;
  ExitCode?: number;
  OOMKilled?: boolean;
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
