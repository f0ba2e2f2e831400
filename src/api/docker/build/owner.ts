// Owner of every build step container. A build never outlives its daemon, so a system with this owner found at start
// is debris of a build a crash interrupted, and recovery removes it: the record, written before any kernel change,
// is the build's intent for its containers.
export const BUILD_OWNER = 'silo-build';
