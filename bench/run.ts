// `npm run bench [-- storage|compute|proxy|workers|engines|http|agents|lake|scale-out ...]`: runs the benchmarks and prints their tables (Markdown).
import { runProxyBenchmarks } from './proxy.ts';
import { runStorageBenchmarks } from './storage-node.ts';
import { runComputeBenchmarks } from './compute.ts';
import { runWorkersBenchmarks } from './workers.ts';
import { runEnginesBenchmarks } from './engines.ts';
import { runHttpPathBenchmarks } from './http-path.ts';
import { runAgentsBenchmarks } from './agents.ts';
import { runLakeBenchmarks } from './lake.ts';
import { runScaleOutBenchmarks } from './scale-out.ts';

const suites: Record<string, () => Promise<string[]>> = {
  storage: runStorageBenchmarks,
  compute: runComputeBenchmarks,
  proxy: runProxyBenchmarks,
  workers: runWorkersBenchmarks,
  engines: runEnginesBenchmarks,
  http: runHttpPathBenchmarks,
  agents: runAgentsBenchmarks,
  lake: runLakeBenchmarks,
  'scale-out': runScaleOutBenchmarks,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(suites);
for (const name of names) {
  const run = suites[name];
  if (!run) {
    process.stderr.write(`unknown benchmark suite ${JSON.stringify(name)}; choose from ${Object.keys(suites).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n## ${name}\n\n`);
  await run();
}
