// Owner of every build step container. A build never outlives its daemon, so a system with this owner found at start
// is debris of a build a crash interrupted: the builder registers the owner as transient with the compute service
// when the Docker door gets ready (routes.ts), which removes it then. The record, written before any kernel change, is
// the build's intent for its containers.
export const BUILD_OWNER = 'silo-build';
