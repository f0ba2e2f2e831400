// Owner of every build step container. A build never outlives its daemon, so a system with this owner found at start
// is debris of a build a crash interrupted: the builder registers the owner as transient with the compute service
// when the Docker door gets ready (routes.ts), which removes it then. The record, written before any kernel change, is
// the build's intent for its containers.
export const BUILD_OWNER = 'silo-build';

/**
 * At the daemon's start, before any door serves (the Docker door loads on first use): the step containers and build
 * contexts an interrupted build left. The door does the same when it gets ready, then finds nothing.
 */
export async function sweepBuildDebris(compute: { registerTransientOwner(owner: string): Promise<number> }, stateDir: string): Promise<void> {
  await compute.registerTransientOwner(BUILD_OWNER);
  const { rm } = await import('node:fs/promises');
  await rm(`${stateDir}/docker/build`, { recursive: true, force: true });
}
