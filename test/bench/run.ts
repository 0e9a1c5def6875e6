/**
 * `npm run bench [section ...]`: speed and memory ratios, each measured within one run on this
 * machine. Sections: runtime, patching, attribution, pipeline, interventions, live, families, sweep, scale, redis, acdc-prefix, prune, wasm-threads, engines-families, matmul
 * (default: all).
 */
import { initBackend } from '../../src/backend/index.js';
import { benchRuntime } from './runtime.bench.js';
import { benchPatching } from './patching.bench.js';
import { benchPipeline } from './pipeline.bench.js';

const sections: Record<string, (log: (line: string) => void) => Promise<void>> = {
  runtime: benchRuntime,
  patching: benchPatching,
  attribution: async (log) => (await import('./attribution.bench.js')).benchAttribution(log),
  pipeline: benchPipeline,
  interventions: async (log) => (await import('./interventions.bench.js')).benchInterventions(log),
  live: async (log) => (await import('./live.bench.js')).benchLive(log),
  families: async (log) => (await import('./families.bench.js')).benchFamilies(log),
  sweep: async (log) => (await import('./sweep.bench.js')).benchSweep(log),
  scale: async (log) => (await import('./scale.bench.js')).benchScale(log),
  redis: async (log) => (await import('./redis.bench.js')).benchRedis(log),
  'acdc-prefix': async (log) => (await import('./acdc-prefix.bench.js')).benchAcdcPrefix(log),
  prune: async (log) => (await import('./prune.bench.js')).benchPrune(log),
  'wasm-threads': async (log) => (await import('./scale.bench.js')).threadedSimd(log),
  matmul: async (log) => (await import('./matmul.bench.js')).benchMatmul(log),
  'engines-families': async (log) => {
    const { benchFamilyPatching, benchFamilyAttribution } = await import('./engines-families.bench.js');
    await benchFamilyPatching(log);
    await benchFamilyAttribution(log);
  },
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const backend = await initBackend(process.argv.find((a) => a.startsWith('--backend='))?.split('=')[1]);
console.log(`circuitry benchmarks · backend ${backend} · node ${process.version}`);
for (const name of wanted.length ? wanted : Object.keys(sections)) {
  const run = sections[name];
  if (!run) {
    console.error(`unknown section '${name}' (expected ${Object.keys(sections).join(', ')})`);
    process.exit(2);
  }
  console.log(`\n== ${name} ==`);
  await run((line) => console.log(`  ${line}`));
}
