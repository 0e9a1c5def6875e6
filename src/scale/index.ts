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
import { type CausalTraceOptions, type CausalTraceResult, causalTrace, mergeTraceShares, traceKinds } from '../interventions/causal-tracing.js';

export { PooledPatcher } from './pooled-patcher.js';
export { WorkerPool } from './pool.js';
export { shardRanges, type Shard } from './shards.js';

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
 * prompts, which cannot split), or on a pool of `workers` threads started on first use.
 * Close it when the work ends (it ends the threads).
 */
export class Executor {
  private pool: WorkerPool | undefined;
  private closed = false;
  /** The worker count in use ('auto' resolved for the model). */
  readonly workers: number;

  constructor(
    private readonly loaded: LoadedModel,
    workers: WorkerCount,
    private readonly opts: { log?: (message: string) => void } = {},
  ) {
    this.workers = resolveWorkers(workers, loaded.model.cfg);
  }

  /** A patcher over `data`: pooled when the data makes two or more chunks and workers > 1. */
  async patcher(graph: CircuitGraph, data: PairData, opts: PatcherOptions, signal?: AbortSignal): Promise<MaskEvaluator> {
    const chunks = PooledPatcher.chunkCount(data.clean.length, opts.batchSize);
    // mean ablation averages over the whole dataset: a shard alone cannot compute it
    if (this.workers <= 1 || chunks < 2 || opts.ablation === 'mean') return new Patcher(this.loaded.model, graph, data, opts);
    if (this.closed) throw new Error('the executor is closed');
    this.pool ??= new WorkerPool(Math.min(this.workers, chunks), { log: this.opts.log });
    return PooledPatcher.open(this.pool, backendName(), modelRef(this.loaded), graph, data, opts, signal);
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
    if (this.workers <= 1 || chunks < 2 || options.ablation === 'mean') return attributeEdges({ model: this.loaded.model, graph, data }, method, options);
    this.pool ??= new WorkerPool(Math.min(this.workers, chunks), { log: this.opts.log });
    const pool = this.pool;
    const shards = shardRanges(chunks, pool.size);
    const t0 = performance.now();
    const parts = await Promise.all(
      shards.map(async (s) => {
        const { from, to } = exampleRange(s, bs, n);
        const part: PairData = { clean: data.clean.slice(from, to), corrupted: data.corrupted.slice(from, to), answers: data.answers.slice(from, to), wrongs: data.wrongs.slice(from, to) };
        const what = `shard ${s.index + 1} of ${shards.length} (prompts ${from}–${to - 1})`;
        const r = await pool.run(s.index, { kind: 'attribute-data', backend: backendName(), model: modelRef(this.loaded), graph: graph.shape, data: part, method, options: { ...options, batchSize: bs } }, what);
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
    if (workers <= 1) return causalTrace(this.loaded.model, tokens, answer, options);
    if (this.closed) throw new Error('the executor is closed');
    this.pool ??= new WorkerPool(workers, { log: this.opts.log });
    const pool = this.pool;
    const count = Math.min(pool.size, restorations);
    let done = 0;
    onProgress?.(0, restorations);
    const shares = await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const r = await pool.run(index, { kind: 'trace', backend: backendName(), model: modelRef(this.loaded), tokens, answer, options: { ...rest, share: { index, count } } }, `share ${index + 1} of ${count} of the restorations`, signal);
        done += Math.ceil((restorations - index) / count);
        onProgress?.(done, restorations);
        return r.trace!;
      }),
    );
    return mergeTraceShares(shares);
  }

  /** The threads in use (0 when everything ran in-process). */
  get threads(): number {
    return this.pool?.size ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.destroy();
    this.pool = undefined;
  }
}

/** How a worker gets the model: the shared weights when loaded with shareWeights, else by name. */
function modelRef(loaded: LoadedModel): ModelRef {
  const key = `${loaded.name}@${loaded.source.hash}`;
  if (loaded.shared) return { kind: 'shared', key, config: loaded.shared.config, bytes: loaded.shared.bytes, source: loaded.shared.source };
  return { kind: 'name', key, name: loaded.source.dir ?? loaded.name };
}
