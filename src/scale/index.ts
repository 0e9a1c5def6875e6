import { availableParallelism } from 'node:os';
import type { CircuitGraph } from '../graph/graph.js';
import type { LoadedModel } from '../model/load.js';
import { type MaskEvaluator, type PairData, Patcher, type PatcherOptions } from '../patching/patcher.js';
import { backendName } from '../backend/index.js';
import { WorkerPool } from './pool.js';
import { PooledPatcher } from './pooled-patcher.js';
import type { ModelRef } from './protocol.js';

export { PooledPatcher } from './pooled-patcher.js';
export { WorkerPool } from './pool.js';
export { shardRanges, type Shard } from './shards.js';

/** The default worker count: the cores of this machine. */
export function defaultWorkers(): number {
  return availableParallelism();
}

/**
 * Where mask evaluations run: in this process (`workers` 1, or work of a single chunk of
 * prompts, which cannot split), or on a pool of `workers` threads started on first use.
 * Close it when the work ends (it ends the threads).
 */
export class Executor {
  private pool: WorkerPool | undefined;
  private closed = false;

  constructor(
    private readonly loaded: LoadedModel,
    readonly workers: number,
    private readonly opts: { log?: (message: string) => void } = {},
  ) {}

  /** A patcher over `data`: pooled when the data makes two or more chunks and workers > 1. */
  async patcher(graph: CircuitGraph, data: PairData, opts: PatcherOptions, signal?: AbortSignal): Promise<MaskEvaluator> {
    const chunks = PooledPatcher.chunkCount(data.clean.length, opts.batchSize);
    // mean ablation averages over the whole dataset: a shard alone cannot compute it
    if (this.workers <= 1 || chunks < 2 || opts.ablation === 'mean') return new Patcher(this.loaded.model, graph, data, opts);
    if (this.closed) throw new Error('the executor is closed');
    this.pool ??= new WorkerPool(Math.min(this.workers, chunks), { log: this.opts.log });
    return PooledPatcher.open(this.pool, backendName(), modelRef(this.loaded), graph, data, opts, signal);
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
