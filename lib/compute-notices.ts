// Wire-level agreements between components that cross the network.

/**
 * Detail of the FATAL 57P01 a compute host sends its sessions when it stops a compute cleanly (a suspend). The
 * proxy keeps an idle client session open across exactly this (proxy/wire/relay.ts); any other end of a
 * backend session (pg_terminate_backend, a crash) ends the client's session too.
 */
export const COMPUTE_STOPPING_DETAIL = 'lakebase: the compute is stopping (endpoint suspended)';
