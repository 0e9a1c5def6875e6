import { availableParallelism } from 'node:os';
import type { CircuitGraph } from '../graph/graph.js';
import type { LoadedModel } from '../model/load.js';
import type { ModelConfig } from '../model/config.js';
import { type MaskEvaluator, type PairData, Patcher, type PatcherOptions } from '../patching/patcher.js';
import { backendName } from '../backend/index.js';
import { WorkerPool } from './pool.js';
import { exampleRange, shardRanges } from './shards.js';
import { attributeEdges } from '../attribution/registry.js';
import type { AttributionOptions, EdgeAttribution } from '../attribution/types.js';
import { PooledPatcher } from './pooled-patcher.js';
import type { ModelRef } from './protocol.js';
import type { ShardRunner } from './runner.js';
import { collectGarbage } from './gc.js';
import { type CausalTraceOptions, type CausalTraceResult, causalTrace, mergeTraceShares, traceKinds } from '../interventions/causal-tracing.js';

export { PooledPatcher } from './pooled-patcher.js';
export { WorkerPool } from './pool.js';
export { shardRanges, type Shard } from './shards.js';
export type { ShardRunner, WorkerOk } from './runner.js';

/** The default worker count: the cores of this machine. */
export function defaultWorkers(): number {
  return availableParallelism();
}

/** A worker count, or 'auto': the core count for models big enough to gain from it, else 1. */
export type WorkerCount = number | 'auto';

/**
 * Below this many weights 'auto' runs in-process: a pool spends about 2 s starting (each worker
 * loads the modules and builds its model), more than a small model's whole discovery gains
 * (the zoo's models run a pass in milliseconds), while GPT-2 small's passes take seconds.
 */
export const AUTO_POOL_MIN_PARAMS = 20e6;

/** The number of workers `count` means for a model of this config. */
export function resolveWorkers(count: WorkerCount, cfg: ModelConfig): number {
  if (count !== 'auto') return count;
  return modelParams(cfg) >= AUTO_POOL_MIN_PARAMS ? defaultWorkers() : 1;
}

/** The weights of a model of this config, roughly (embeddings and blocks). */
function modelParams(cfg: ModelConfig): number {
  const { dModel: d, dMlp, nHeads: H, nKvHeads: Hkv, dHead: dh, nLayers: L, dVocab: V } = cfg;
  const attn = d * dh * (2 * H + 2 * Hkv);
  const mlp = cfg.attnOnly ? 0 : d * dMlp * (cfg.gatedMlp ? 3 : 2);
  return V * d + L * (attn + mlp);
}

/**
 * Where mask evaluations run: in this process (`workers` 1, or work of a single chunk of
 * prompts, which cannot split), on a pool of `workers` threads started on first use, or on a
 * given runner (`opts.runner`, e.g. Redis: its `size` shards, even a single one, since the work
 * leaves this process). Close it when the work ends (it ends the threads; a given runner is
 * its owner's to close).
 */
export class Executor {
  private pool: ShardRunner | undefined;
  private closed = false;
  /** The worker count in use ('auto' resolved for the model; a given runner's shard count). */
  readonly workers: number;

  constructor(
    private readonly loaded: LoadedModel,
    workers: WorkerCount,
    private readonly opts: { log?: (message: string) => void; runner?: ShardRunner } = {},
  ) {
    this.workers = opts.runner ? opts.runner.size : resolveWorkers(workers, loaded.model.cfg);
  }

  /** True when pooled work leaves this process (a given remote runner). */
  get remote(): boolean {
    return this.opts.runner?.remote === true;
  }

  /** The runner for `size` shards: the given one, else this executor's pool (started on first use). */
  private runner(size: number): ShardRunner {
    if (this.closed) throw new Error('the executor is closed');
    if (this.opts.runner) return this.opts.runner;
    this.pool ??= new WorkerPool(size, { log: this.opts.log });
    return this.pool;
  }

  /** A patcher over `data`: pooled when the data makes two or more chunks and workers > 1. */
  async patcher(graph: CircuitGraph, data: PairData, opts: PatcherOptions, signal?: AbortSignal): Promise<MaskEvaluator> {
    const chunks = PooledPatcher.chunkCount(data.clean.length, opts.batchSize);
    // mean ablation averages over the whole dataset: a shard alone cannot compute it
    if (opts.ablation === 'mean' || (!this.remote && (this.workers <= 1 || chunks < 2))) return new Patcher(this.loaded.model, graph, data, opts);
    const runner = this.runner(Math.min(this.workers, chunks));
    const patcher = await PooledPatcher.open(runner, backendName(), () => modelRef(this.loaded, runner.remote), graph, data, opts, signal);
    // every worker of the pool holds the model now
    if (runner === this.pool && this.loaded.shared?.release()) collectGarbage();
    return patcher;
  }

  /**
   * Attribution scores of every edge from a model and data (attributeEdges), each worker scoring
   * whole batches of the prompts; shards are weighted by their share of the prompts (equal to
   * in-process to float rounding, 1e-6). Mean ablation (a dataset mean) runs in-process.
   */
  async attribute(graph: CircuitGraph, data: PairData, method: string, options: AttributionOptions & { batchSize?: number }): Promise<EdgeAttribution> {
    const n = data.clean.length;
    const bs = options.batchSize ?? Math.min(n, 32);
    const chunks = Math.ceil(n / bs);
    if (options.ablation === 'mean' || (!this.remote && (this.workers <= 1 || chunks < 2))) return attributeEdges({ model: this.loaded.model, graph, data }, method, options);
    const pool = this.runner(Math.min(this.workers, chunks));
    const shards = shardRanges(chunks, pool.size);
    const t0 = performance.now();
    const parts = await Promise.all(
      shards.map(async (s) => {
        const { from, to } = exampleRange(s, bs, n);
        const part: PairData = { clean: data.clean.slice(from, to), corrupted: data.corrupted.slice(from, to), answers: data.answers.slice(from, to), wrongs: data.wrongs.slice(from, to) };
        const what = `shard ${s.index + 1} of ${shards.length} (prompts ${from}–${to - 1})`;
        const r = await pool.run(s.index, { kind: 'attribute-data', backend: backendName(), model: modelRef(this.loaded, pool.remote), graph: graph.shape, data: part, method, options: { ...options, batchSize: bs } }, what);
        return { weight: (to - from) / n, r: r.attribution! };
      }),
    );
    const scores = new Float64Array(graph.denseSize);
    let base = 0;
    let patched: number | undefined;
    for (const { weight, r } of parts) {
      for (let i = 0; i < scores.length; i++) scores[i] += r.scores[i] * weight;
      base += r.baseMetric * weight;
      if (r.patchedMetric !== undefined) patched = (patched ?? 0) + r.patchedMetric * weight;
    }
    const first = parts[0].r;
    return {
      ...first,
      graph,
      scores: Float32Array.from(scores),
      baseMetric: base,
      ...(patched !== undefined ? { patchedMetric: patched } : {}),
      nExamples: n,
      forwardPasses: parts.reduce((s, p) => s + p.r.forwardPasses, 0),
      backwardPasses: parts.reduce((s, p) => s + p.r.backwardPasses, 0),
      seconds: (performance.now() - t0) / 1000,
      warnings: [...new Set(parts.flatMap((p) => p.r.warnings))],
    };
  }

  /**
   * Causal tracing of one prompt (causalTrace), its restorations shared out over the workers
   * (interleaved by depth) and merged; in-process with one worker. Each worker runs the clean
   * and noised runs itself (the same seeded noise). Values equal in-process ones to float
   * rounding: a restoration may share its stacked pass with other ones.
   */
  async trace(tokens: readonly number[], answer: readonly number[], options: CausalTraceOptions, signal?: AbortSignal): Promise<CausalTraceResult> {
    const cfg = this.loaded.model.cfg;
    const { onProgress, ...rest } = options;
    const restorations = traceKinds(cfg, options.kinds).length * cfg.nLayers * tokens.length;
    const workers = Math.min(this.workers, restorations);
    if (workers <= 1 && !this.remote) return causalTrace(this.loaded.model, tokens, answer, options);
    const pool = this.runner(workers);
    const count = Math.min(pool.size, restorations);
    let done = 0;
    onProgress?.(0, restorations);
    const shares = await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const r = await pool.run(index, { kind: 'trace', backend: backendName(), model: modelRef(this.loaded, pool.remote), tokens, answer, options: { ...rest, share: { index, count } } }, `share ${index + 1} of ${count} of the restorations`, signal);
        done += Math.ceil((restorations - index) / count);
        onProgress?.(done, restorations);
        return r.trace!;
      }),
    );
    return mergeTraceShares(shares);
  }

  /** The threads in use, or a given runner's shards (0 when everything ran in-process). */
  get threads(): number {
    return this.opts.runner?.size ?? this.pool?.size ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.destroy();
    this.pool = undefined;
  }
}

/**
 * How a worker gets the model: the shared weights when loaded with shareWeights, else by name;
 * a remote worker always by the name it was given (a zoo name, a hub id in the worker's HF
 * cache, or a path on the worker), with the weights' hash to check that it loaded the same.
 */
function modelRef(loaded: LoadedModel, remote: boolean): ModelRef {
  const key = `${loaded.name}@${loaded.source.hash}`;
  if (remote) return { kind: 'name', key, name: loaded.name, hash: loaded.source.hash };
  const s = loaded.shared;
  if (s) return { kind: 'shared', key, config: s.config, source: s.source, ...(s.bytes ? { bytes: s.bytes } : {}), ...(s.dir !== undefined ? { dir: s.dir } : {}) };
  return { kind: 'name', key, name: loaded.source.dir ?? loaded.name };
}
