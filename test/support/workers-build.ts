// Bundles a Worker entry the way wrangler does (esbuild, ESM, the `workerd`/`worker`/`browser` export
// conditions), in memory, for Miniflare. esbuild is wrangler's own dependency; wrangler.toml uses the same
// entries, so what the tests run is what `wrangler dev` and `wrangler deploy` run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Compatibility date for every Worker (also in wrangler.toml): within what the pinned workerd supports. */
export const COMPATIBILITY_DATE = '2026-07-01';

export interface BundledWorker {
  /** Module path Miniflare reports in stack traces. */
  path: string;
  contents: string;
}

export async function bundleWorker(entry: string): Promise<BundledWorker> {
  const abs = path.resolve(ROOT, entry);
  const result = await build({
    entryPoints: [abs],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2024',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'jsnext:main', 'main'],
    write: false,
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  return { path: abs.replace(/\.ts$/, '.js'), contents: out.text };
}
