import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/model/load.js';
import { graphForModel } from '../../src/graph/graph.js';
import { resolveDataset } from '../../src/discovery/data.js';
import { type PipelineConfig, resolvePipelineConfig } from '../../src/discovery/config.js';
import { runAcdc } from '../../src/discovery/acdc.js';
import { screenEdges } from '../../src/discovery/screen.js';
import { maskPatching } from '../../src/patching/path-patching.js';
import { Executor } from '../../src/scale/index.js';
import type { TaskDataset } from '../../src/tasks/index.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { GPT2_SMALL, randomGpt2Tensors } from '../helpers/random-model.js';
import { fmt } from './timing.js';

/**
 * `npm run bench scale`: the worker pool against in-process work, each ratio from one run.
 * CIRCUITRY_BENCH_SCALE=small shrinks the GPT-2-small-shape part (fewer candidates) for a quick check.
 */
export async function benchScale(log: (line: string) => void): Promise<void> {
  const small = process.env.CIRCUITRY_BENCH_SCALE === 'small';
  // CIRCUITRY_BENCH_SCALE=pipeline: only the full GPT-2-small-shape pipeline (part 3)
  const onlyPipeline = process.env.CIRCUITRY_BENCH_SCALE === 'pipeline';
  log(`cores: ${(await import('node:os')).availableParallelism()}; the pool runs one tfjs-wasm (single-threaded SIMD) per worker thread`);
  if (!onlyPipeline) {
    threadedSimd(log);
    // 1. workers=2 over workers=1 on a trained zoo model
    const zoo = await loadModel('mini-gpt2-l4h8', { shareWeights: true });
    await speedups(log, zoo, resolveDataset(zoo, { task: { name: 'ioi', n: 32, seed: 7, options: {} } }), { verify: 100 });
    zoo.model.dispose();
  }

  // 2. the GPT-2-small shape (random weights, built once and cached outside the repository)
  const dir = gpt2SmallShapeFolder(log);
  const big = await loadModel(dir, { shareWeights: true });
  const cfg = resolvePipelineConfig({
    model: dir,
    task: { name: 'ioi', n: 32, seed: 1, corruption: 'abc' },
    metric: 'logit-diff',
    batch_size: 8,
    screen: { method: 'eap' },
    verify: { top: small ? 24 : 400, floor: 0.005 },
    prune: { tau: 0.02, faith: 'abs-diff', order: 'acdc' },
    output: join(tmpdir(), 'circuitry-bench-scale', 'gpt2-ioi.json'),
  });
  const data = resolveDataset(big, { task: cfg.task });
  if (!onlyPipeline) await speedups(log, big, data, { verify: small ? 16 : 64, acdc: false, eapIgPerCore: true });

  big.model.dispose();

  // 3. the pipeline of pipelines/gpt2-ioi.yaml, as `circuitry discover` in a fresh process
  // (its peak RSS covers the worker threads, which live in the same process)
  const counts = small || process.env.CIRCUITRY_BENCH_SCALE_SERIAL === '1' ? [2, 1] : [2];
  const wall: Record<number, number> = {};
  for (const workers of counts) {
    const r = await discover(cfg, workers);
    wall[workers] = r.seconds;
    log(
      `GPT-2-small-shape IOI pipeline (as pipelines/gpt2-ioi.yaml${small ? `, top ${cfg.verify.top}` : ''}), ${workers} worker${workers > 1 ? 's' : ''}: ${fmt(r.seconds, 0)} s wall ` +
        `(${r.stages}); peak RSS ${fmt(r.peakRss / 2 ** 30, 2)} GiB${r.error ? `; FAILED: ${r.error}` : ''}`,
    );
  }
  if (wall[1] !== undefined) log(`discover end to end, workers=2 over workers=1: ${fmt(wall[1] / wall[2])}× (goal ≥ 1.7× on 2 cores)`);
}

/** `circuitry discover` on a pipeline config in a child process: wall time, stage times, peak RSS (VmHWM). */
async function discover(cfg: PipelineConfig, workers: number): Promise<{ seconds: number; peakRss: number; stages: string; error?: string }> {
  const dir = join(tmpdir(), 'circuitry-bench-scale');
  mkdirSync(dir, { recursive: true });
  const graph = join(dir, `gpt2-ioi-${workers}.json`);
  const yaml = join(dir, `gpt2-ioi-${workers}.yaml`);
  writeFileSync(
    yaml,
    [`model: ${cfg.model}`, `task: ${JSON.stringify({ name: cfg.task!.name, n: cfg.task!.n, seed: cfg.task!.seed, ...cfg.task!.options })}`, `metric: ${cfg.metric}`, `batch_size: ${cfg.batchSize}`,
      `screen: { method: ${cfg.screen.method} }`, `verify: { top: ${cfg.verify.top}, floor: ${cfg.verify.floor} }`, `prune: { tau: ${cfg.prune.tau}, faith: ${cfg.prune.faith}, order: ${cfg.prune.order} }`, `output: ${graph}`, ''].join('\n'),
  );
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(process.cwd(), 'bin', 'circuitry.js'), 'discover', yaml, '--no-report', '--fresh', '--workers', String(workers)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/u.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
    } catch {
      // the process has ended
    }
  }, 250);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  const seconds = (performance.now() - t0) / 1000;
  let stages = '';
  if (code === 0) {
    const t = JSON.parse(readFileSync(graph, 'utf8')).meta.timings as Record<string, number>;
    stages = Object.entries(t).map(([k, v]) => `${k} ${fmt(v, 0)} s`).join(', ');
  }
  return { seconds, peakRss: peak, stages, ...(code === 0 ? {} : { error: `exit ${code}: ${(err || out).trim().split('\n').slice(-2).join(' ')}` }) };
}

/** The same work on 1 and 2 workers: verify (single-edge patching), ACDC over those edges, EAP-IG (m = 5). */
async function speedups(log: (line: string) => void, loaded: LoadedModel, data: TaskDataset, opts: { verify: number; acdc?: boolean; eapIgPerCore?: boolean }): Promise<void> {
  const graph = graphForModel(loaded.model.cfg);
  const batchSize = 8;
  log(`${loaded.name}: ${graph.nEdges} edges, ${data.clean.length} IOI pairs × ${data.seqLen} tokens, batch ${batchSize}`);
  const seconds: Record<string, number[]> = {};
  let candidates: string[] = [];
  for (const workers of [1, 2]) {
    const executor = new Executor(loaded, workers, { log });
    try {
      let t = performance.now();
      const p = await executor.patcher(graph, data, { metric: 'logit-diff', batchSize });
      const open = (performance.now() - t) / 1000;
      t = performance.now();
      const scores = await screenEdges(p, 'eap-ig', 5); // (first call: includes one-time weight copies)
      const ig = (performance.now() - t) / 1000;
      if (candidates.length === 0) candidates = [...graph.edges].sort((a, b) => Math.abs(scores[b.index]) - Math.abs(scores[a.index])).slice(0, opts.verify).map((e) => e.name);
      const edges = candidates.map((n) => graph.edge(n));
      await p.evaluateAsync([maskPatching(p, [edges[0]])]); // warm-up: each tfjs's first masked passes
      t = performance.now();
      const effects = await p.evaluateAsync(edges.map((e) => maskPatching(p, [e])));
      const verify = (performance.now() - t) / 1000;
      let acdc = NaN;
      if (opts.acdc !== false) {
        const tau = 0.02 * Math.abs(p.cleanMetric - p.corruptedMetric);
        const expectKept = new Set(candidates.filter((_, i) => Math.abs(effects[i] - p.baseMetric) >= tau));
        t = performance.now();
        await runAcdc(p, { tau, candidates, faith: 'abs-diff', skipUnused: true, expectKept });
        acdc = (performance.now() - t) / 1000;
      }
      seconds[workers] = [open, ig, verify, acdc];
      p.dispose();
    } finally {
      await executor.close();
    }
  }
  const [a, b] = [seconds[1], seconds[2]];
  log(`  workers=1: EAP-IG(5) ${fmt(a[1])} s, verify ${opts.verify} edges ${fmt(a[2])} s${opts.acdc !== false ? `, ACDC ${fmt(a[3])} s` : ''} (patcher ${fmt(a[0])} s)`);
  log(`  workers=2: EAP-IG(5) ${fmt(b[1])} s, verify ${opts.verify} edges ${fmt(b[2])} s${opts.acdc !== false ? `, ACDC ${fmt(b[3])} s` : ''} (pool start and caches ${fmt(b[0])} s)`);
  log(`  speed-up workers=2 / workers=1: EAP-IG ${fmt(a[1] / b[1])}×, verify ${fmt(a[2] / b[2])}×${opts.acdc !== false ? `, ACDC ${fmt(a[3] / b[3])}×` : ''}`);
  if (opts.eapIgPerCore) {
    // one plain forward of the whole dataset in this process (one core), batch by batch
    const plain = () => {
      for (let i = 0; i < data.clean.length; i += batchSize) {
        const tokens = loaded.model.tokens(data.clean.slice(i, i + batchSize));
        loaded.model.forward(tokens).dispose();
        tokens.dispose();
      }
    };
    plain();
    const t = performance.now();
    plain();
    const fwd = (performance.now() - t) / 1000;
    log(`  EAP-IG(5) in forward-equivalents (wall time / one plain single-core forward of the data, ${fmt(fwd)} s): ${fmt(a[1] / fwd)} on 1 worker, ${fmt(b[1] / fwd)} on 2 workers (goal ≤ 7 per core)`);
  }
}

/**
 * tfjs-backend-wasm's threaded SIMD build (setThreadsCount), tried in a child process: tfjs
 * turns it off under Node (WASM_HAS_MULTITHREAD_SUPPORT is false there), so the flag is forced.
 */
export function threadedSimd(log: (line: string) => void): void {
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import * as wasm from '@tensorflow/tfjs-backend-wasm';
    const threads = Number(process.argv[2]);
    if (threads > 1) { tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true); wasm.setThreadsCount(threads); }
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('did not start in 20 s')), 20000));
    try {
      await Promise.race([tf.setBackend('wasm').then(() => tf.ready()), timeout]);
      if (tf.getBackend() !== 'wasm') throw new Error('the backend did not initialize');
      const a = tf.randomNormal([256, 768]), b = tf.randomNormal([768, 3072]);
      tf.matMul(a, b).dataSync();
      const t = performance.now();
      for (let i = 0; i < 10; i++) tf.matMul(a, b).dataSync();
      console.log('ok ' + ((performance.now() - t) / 10).toFixed(1));
    } catch (e) { console.log('failed ' + String(e && e.message || e).split('\\n')[0]); }
    process.exit(0);`;
  const dir = join(process.cwd(), '.cache');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'circuitry-threaded-simd.mjs');
  writeFileSync(file, script);
  const run = (threads: number) => {
    const r = spawnSync(process.execPath, [file, String(threads)], { encoding: 'utf8', timeout: 60_000 });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('ok ') || l.startsWith('failed ')) ?? `failed (exit ${r.status})`;
    return line.startsWith('ok ') ? { ms: Number(line.slice(3)) } : { error: line.slice(7) + ((r.stderr ?? '').match(/ERR_WORKER_PATH[^\n]*/)?.[0] ? ' (ERR_WORKER_PATH: its pthread workers start from blob: URLs, which Node refuses)' : '') };
  };
  const one = run(1);
  const two = run(2);
  if ('ms' in two && 'ms' in one) log(`threaded SIMD build, matmul [256×768]·[768×3072]: 1 thread ${fmt(one.ms!, 1)} ms, 2 threads ${fmt(two.ms!, 1)} ms (${fmt(one.ms! / two.ms!)}×)`);
  else log(`threaded SIMD build with setThreadsCount(2): ${'error' in two ? two.error : '?'}; single-threaded SIMD matmul ${'ms' in one ? `${fmt(one.ms!, 1)} ms` : one.error}. The pool is the way to use more cores.`);
}

/** A random model of GPT-2 small's shape as a HuggingFace folder, cached in ~/.cache/circuitry. */
export function gpt2SmallShapeFolder(log: (line: string) => void): string {
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'circuitry', 'bench-gpt2-small-shape-seed13');
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  const t0 = performance.now();
  const { tensors } = randomGpt2Tensors({ ...GPT2_SMALL, seed: 13 });
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  writeFileSync(
    join(tmp, 'config.json'),
    JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_layer: 12, n_head: 12, n_embd: 768, n_inner: 3072, vocab_size: 50257, n_positions: 1024, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true }, null, 1),
  );
  writeSafetensors(join(tmp, 'model.safetensors'), tensors);
  renameSync(tmp, dir);
  log(`built the GPT-2-small-shape model in ${dir} (${fmt((performance.now() - t0) / 1000, 0)} s; cached for later runs)`);
  return dir;
}
