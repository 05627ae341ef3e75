// Compiling PGlite's WebAssembly once per process. A compiled WebAssembly.Module can be handed to any number of
// worker threads (postMessage/workerData share it without recompiling), which turns a compute's start from
// "compile 9 MB of wasm" into "instantiate it".
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);

// @types/node declares the WebAssembly types but not the global's value for lib ES2024 (no DOM lib).
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WebAssembly.Module> } }).WebAssembly;

/** The directory of @electric-sql/pglite's dist files (pglite.wasm, initdb.wasm, pglite.data). */
export function pgliteDistDir(): string {
  return path.dirname(require.resolve('@electric-sql/pglite'));
}

let pgliteModule: Promise<WebAssembly.Module> | null = null;
let initdbModule: Promise<WebAssembly.Module> | null = null;

/** pglite.wasm (the Postgres backend), compiled once per process. */
export function getPgliteWasmModule(): Promise<WebAssembly.Module> {
  pgliteModule ??= readFile(path.join(pgliteDistDir(), 'pglite.wasm')).then((b) => wasm.compile(b));
  return pgliteModule;
}

/** initdb.wasm (only needed to create a data directory), compiled once per process. */
export function getInitdbWasmModule(): Promise<WebAssembly.Module> {
  initdbModule ??= readFile(path.join(pgliteDistDir(), 'initdb.wasm')).then((b) => wasm.compile(b));
  return initdbModule;
}
