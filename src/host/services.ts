import type { ComputeService } from '../compute/service.js';
import type { StorageService } from '../storage/types.js';
import type { NetworkService } from '../network/types.js';
import type { EventBus } from '../common/events.js';
import type { Registry } from '../storage/registry/index.js';
import type { Logger } from '../common/log.js';

/** What the front doors see of the host: the services, wired once in daemon.ts. */
export interface Services {
  compute: ComputeService;
  storage: StorageService;
  network: NetworkService;
  events: EventBus;
  /** Pull, push, login: the registry client on the content store. */
  registry: Registry;
  info: () => Promise<Record<string, unknown>>;
  version: () => Record<string, unknown>;
  /** The daemon's logger; each front door and service takes a child of it. */
  log: Logger;
  /** Kernel objects with this daemon's names that no Silo object owns; `fix` removes them. */
  doctor: (fix: boolean) => Promise<import('./doctor.js').Finding[]>;
  /** `silo vm template` and `silo vm kernel`: the vm isolation backend's templates and guest kernels. */
  vm: {
    listTemplates(): Promise<import('../compute/types.js').VmTemplateInfo[]>;
    makeTemplate(r: import('../compute/backend.js').Resources, kernelPackage?: string): Promise<import('../compute/types.js').VmTemplateInfo>;
    removeTemplate(key: string): Promise<void>;
    listKernels(): Promise<Omit<import('../compute/types.js').VmKernelInfo, 'Containers'>[]>;
    checkKernel(pkg: string): Promise<void>;
    removeKernel(pkg: string): Promise<void>;
  };
}
