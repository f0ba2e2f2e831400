// What every Docker route handler shares: the host's services plus the front door's own docker-only state.

import type { Services } from '../../host/services.js';
import type { BuildCache } from './build/cache.js';
import type { MetaStore } from './meta.js';
import type { StatsSampler } from './stats.js';

export interface Ctx {
  svc: Services;
  meta: MetaStore;
  stats: StatsSampler;
  cache: BuildCache;
  stateDir: string;
  /** Containers whose anonymous volumes go with them (rm -v, --rm). */
  dropVolumes: Set<string>;
}
