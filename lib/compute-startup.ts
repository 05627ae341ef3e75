// Startup parameters the proxy sends to a compute beyond Postgres' own. They are the proxy's to set: the proxy
// strips every parameter with this prefix from what a client sends before it forwards the rest. Dotted, so that a
// real PostgreSQL behind the proxy takes them as custom settings instead of refusing the login.
export const RESERVED_PARAM_PREFIX = 'lakebase.';

/**
 * Neon's session reset, which the proxy's HTTP pool sends after each request (with its last statement). A stateless
 * session whose last batch was exactly this, without error, left nothing behind: the compute's hand-off then needs
 * no capture (compute/host/multiplexer.ts).
 */
export const SESSION_RESET_SQL =
  'ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;';

/** `on`: the session keeps no state between its batches (the HTTP pool resets after each request), see multiplexer.ts. */
export const STATELESS_PARAM = 'lakebase.stateless';

/** The timeline a compute serves, as a setting in Postgres (lake capture triggers compare it with their own). */
export const TIMELINE_SETTING = 'lakebase.timeline_id';
