// The Postgres wire codec (protocol 3.0) shared by the proxy, the compute host and the tests.
export * from './bytes.ts';
export * from './errors.ts';
export * from './framing.ts';
export * from './startup.ts';
export * from './frontend.ts';
export * from './backend.ts';
