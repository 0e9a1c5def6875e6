import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendName } from '../../src/backend/index.js';
import { runSweep } from '../../src/sweep/index.js';
import { fmt } from './timing.js';

/**
 * A sweep of 6 pipelines run by 1 local worker (in this process) and by 2 (child processes):
 * the speed-up (bar ≥ 1.7 on 2 cores), and a check that both wrote the same circuits.
 * `CIRCUITRY_BENCH_SWEEP=tiny` runs 6 planted-model pipelines instead (a quick check that it runs).
 */
/**
 * Pairs per pipeline: enough that a pipeline runs for tens of seconds, as real ones do (minutes
 * to hours), so that the bench measures the sweep's throughput rather than the ~5 s a fresh
 * worker process spends starting (module loading, the first run's wasm warm-up), which a
 * local worker pays once.
 */
const PAIRS = 128;

export async function benchSweep(log: (line: string) => void): Promise<void> {
  const tiny = process.env.CIRCUITRY_BENCH_SWEEP === 'tiny';
  const runs = tiny
    ? [
        { name: 'ind', model: 'planted-induction', task: { name: 'induction', n: 8 } },
        { name: 'and', model: 'planted-and', task: { name: 'both-colors', n: 8 } },
        { name: 'or', model: 'planted-or', task: { name: 'first-color', n: 8 } },
      ]
    : ['ioi', 'greater-than', 'induction'].map((t) => ({ name: t, model: 'mini-gpt2', task: { name: t, n: PAIRS } }));
  const dir = mkdtempSync(join(tmpdir(), 'circuitry-bench-sweep-'));
  const file = join(dir, 'sweep.yaml');
  writeFileSync(file, JSON.stringify({ runs, grid: { 'task.seed': [1, 2] } }));
  try {
    const seconds: Record<number, number> = {};
    const circuits: Record<number, string[]> = {};
    for (const workers of [1, 2]) {
      const outDir = join(dir, 'out'); // the same folder each time: the configs (and files) must match
      rmSync(outDir, { recursive: true, force: true });
      const t0 = performance.now();
      const s = await runSweep({ file, outDir, workers, report: false, backend: backendName() });
      seconds[workers] = (performance.now() - t0) / 1000;
      if (s.failures.length) throw new Error(`sweep failed: ${s.failures.map((f) => `${f.name}: ${f.reason}`).join('; ')}`);
      circuits[workers] = s.rows.map((r) => JSON.stringify(JSON.parse(readFileSync(r.graph, 'utf8'), (k, v) => (k === 'timings' || k === 'created' ? undefined : v))));
      log(`${s.rows.length} pipelines (${tiny ? 'planted models' : `mini-gpt2, 3 tasks × 2 seeds, ${PAIRS} pairs`}), ${workers} worker${workers > 1 ? 's' : ''}: ${fmt(seconds[workers])} s`);
    }
    const same = circuits[1].length === 6 && circuits[1].every((c, i) => c === circuits[2][i]);
    log(`speed-up of 2 local workers over 1: ${(seconds[1] / seconds[2]).toFixed(2)}× (bar ≥ 1.7 on 2 cores); circuits identical: ${same ? 'yes' : 'NO'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
