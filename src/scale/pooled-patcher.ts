import { randomUUID } from 'node:crypto';
import type { CircuitGraph } from '../graph/graph.js';
import type { MetricName } from '../metrics/index.js';
import {
  type Ablation,
  DEFAULT_MAX_ROWS,
  DEFAULT_STACK_BUDGET,
  type Direction,
  type MaskEvaluator,
  type PairData,
  type PatcherOptions,
  combineChunkValues,
  effectiveBatchSize,
} from '../patching/patcher.js';
import { type SweepPlan, type SweepResult, type SweepSpec, activationSweepResult, combineWeighted } from '../patching/sweeps.js';
import { effectOf } from '../patching/path-patching.js';
import type { ShardRunner } from './runner.js';
import type { SignificanceTargets } from '../interventions/sweep-significance.js';
import type { SiteEvaluation } from '../interventions/sites.js';
import type { ModelRef, ShardSpec, SparseMask } from './protocol.js';
import { type Shard, exampleRange, shardRanges } from './shards.js';

/**
 * A Patcher whose chunks of prompts live in pool workers: worker i holds the chunks of shard i
 * (contiguous, whole batches) and evaluates every mask on them; the parent sums the chunk values
 * in dataset order with the Patcher's own arithmetic, so every number equals the in-process one
 * (`--workers 1`), bit for bit. ACDC's decisions run data-parallel this way.
 */
export class PooledPatcher implements MaskEvaluator {
  readonly graph: CircuitGraph;
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  readonly nExamples: number;
  forwardPasses = 0;
  private constructor(
    private readonly pool: ShardRunner,
    private readonly backend: string,
    /** The model as a task carries it now (shared weights: the buffer, or its folder once released). */
    private readonly modelNow: () => ModelRef,
    private readonly shards: readonly { shard: Shard; spec: ShardSpec; what: string }[],
    opts: { graph: CircuitGraph; metric: MetricName; direction: Direction; ablation: Ablation; n: number },
    private readonly sizes: number[],
    readonly cleanMetric: number,
    readonly corruptedMetric: number,
    /** The fewest masks any shard's pass stacks. */
    readonly masksPerPass: number,
  ) {
    this.graph = opts.graph;
    this.metric = opts.metric;
    this.direction = opts.direction;
    this.ablation = opts.ablation;
    this.nExamples = opts.n;
  }

  /** The number of chunks of prompts a dataset of n examples makes. */
  static chunkCount(n: number, batchSize: number | undefined): number {
    return Math.ceil(n / effectiveBatchSize(batchSize, n));
  }

  /** Sends each worker its shard (it caches both runs of its prompts) and reads the clean and corrupted metrics. */
  static async open(pool: ShardRunner, backend: string, model: () => ModelRef, graph: CircuitGraph, data: PairData, opts: PatcherOptions, signal?: AbortSignal): Promise<PooledPatcher> {
    const n = data.clean.length;
    const bs = effectiveBatchSize(opts.batchSize, n);
    const id = randomUUID();
    const ranges = shardRanges(Math.ceil(n / bs), pool.size);
    const shards = ranges.map((shard) => {
      const { from, to } = exampleRange(shard, bs, n);
      const spec: ShardSpec = {
        key: `${id}#${shard.index}`,
        graph: graph.shape,
        data: { clean: data.clean.slice(from, to), corrupted: data.corrupted.slice(from, to), answers: data.answers.slice(from, to), wrongs: data.wrongs.slice(from, to) },
        metric: opts.metric,
        direction: opts.direction ?? 'noise',
        ablation: opts.ablation ?? 'patch',
        batchSize: bs,
        stackBudget: opts.stackBudget ?? DEFAULT_STACK_BUDGET,
        maxRows: opts.maxRows ?? DEFAULT_MAX_ROWS,
      };
      return { shard, spec, what: `shard ${shard.index + 1} of ${ranges.length} (prompts ${from}–${to - 1})` };
    });
    const replies = await Promise.all(shards.map((s) => pool.run(s.shard.index, { kind: 'open', backend, model: model(), shard: s.spec }, s.what, signal)));
    const sizes = replies.flatMap((r) => r.sizes!);
    const clean = combineChunkValues(replies.flatMap((r) => r.clean!).map((v) => [v]), sizes, n)[0];
    const corrupted = combineChunkValues(replies.flatMap((r) => r.corrupted!).map((v) => [v]), sizes, n)[0];
    const direction = opts.direction ?? 'noise';
    const masksPerPass = Math.min(...replies.map((r) => r.masksPerPass ?? 1));
    return new PooledPatcher(pool, backend, model, shards, { graph, metric: opts.metric, direction, ablation: opts.ablation ?? 'patch', n }, sizes, clean, corrupted, masksPerPass);
  }

  get workers(): number {
    return this.shards.length;
  }

  get baseMetric(): number {
    return this.direction === 'noise' ? this.cleanMetric : this.corruptedMetric;
  }

  get fullyPatchedMetric(): number {
    return this.direction === 'noise' ? this.corruptedMetric : this.cleanMetric;
  }

  fullMask(): Float32Array {
    return this.graph.denseEdgeArray(1);
  }

  private base: { key: string; mask: SparseMask } | undefined;
  /** The shards whose base runs (for the current base key) were counted in forwardPasses. */
  private baseCounted = new Set<number>();

  /** The base mask goes with every evaluation (a replaced worker sets it again); workers cache its runs. */
  setBaseMask(mask: Float32Array | undefined): void {
    this.base = mask ? { key: randomUUID(), mask: this.sparse(mask) } : undefined;
    this.baseCounted = new Set();
  }

  /** The metric for each mask: every worker evaluates all masks on its chunks, in parallel. */
  async evaluateAsync(masks: readonly Float32Array[], opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {}): Promise<number[]> {
    const sparse = masks.map((m) => this.sparse(m));
    const total = masks.length * this.sizes.length;
    let done = 0;
    opts.onProgress?.(0, total);
    const replies = await Promise.all(
      this.shards.map(async (s) => {
        const r = await this.pool.run(s.shard.index, { kind: 'evaluate', backend: this.backend, model: this.modelNow(), shard: s.spec, masks: sparse, ...(this.base ? { base: this.base } : {}) }, s.what, opts.signal);
        // the base runs count once per shard, as one worker holding the shard builds them once
        // (over Redis another worker may build them again: the same work, not counted twice)
        const base = r.basePasses ?? 0;
        this.forwardPasses += (r.passes ?? 0) - base + (this.base && base > 0 && !this.baseCounted.has(s.shard.index) ? base : 0);
        if (this.base && base > 0) this.baseCounted.add(s.shard.index);
        done += masks.length * (s.shard.end - s.shard.start);
        opts.onProgress?.(done, total);
        return r.values!;
      }),
    );
    return combineChunkValues(replies.flat(), this.sizes, this.nExamples);
  }

  /**
   * Attribution scores (dense) of `method`, each worker scoring its prompts; the shards' scores
   * are weighted by their share of the prompts (the same sum as in-process, to float rounding).
   */
  async attribute(method: string, steps: number | undefined, opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {}): Promise<Float32Array> {
    let done = 0;
    opts.onProgress?.(0, this.shards.length);
    const replies = await Promise.all(
      this.shards.map(async (s) => {
        const r = await this.pool.run(s.shard.index, { kind: 'attribute', backend: this.backend, model: this.modelNow(), shard: s.spec, method, steps }, s.what, opts.signal);
        this.forwardPasses += r.passes ?? 0;
        opts.onProgress?.(++done, this.shards.length);
        return r.scores!;
      }),
    );
    const sum = new Float64Array(this.graph.denseSize);
    this.shards.forEach((s, i) => {
      const w = s.spec.data.clean.length / this.nExamples;
      const scores = replies[i];
      for (let j = 0; j < sum.length; j++) sum[j] += scores[j] * w;
    });
    return Float32Array.from(sum);
  }

  /**
   * A patching sweep (runSweep) over the workers' chunks, combined in dataset order: the same
   * numbers as in-process. `plan` is the sweep planned for the model (planSweep).
   */
  async sweep(spec: SweepSpec, plan: SweepPlan, opts: { positionLabels?: readonly string[]; onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {}): Promise<SweepResult> {
    if (spec.kind === 'edges') {
      const edges = this.graph.edges;
      const before = this.forwardPasses;
      const values = await this.evaluateAsync(
        edges.map((e) => {
          const m = this.fullMask();
          m[e.index] = 0;
          return m;
        }),
        opts,
      );
      const components = values.map((v, i) => ({ name: edges[i].name, row: edges[i].dst, col: edges[i].src, ...effectOf(this, v) }));
      const base = { direction: this.direction, metric: this.metric, ablation: this.ablation, clean: this.cleanMetric, corrupted: this.corruptedMetric };
      return { kind: 'edges', ...base, rows: this.graph.destinations.map((d) => d.name), cols: this.graph.sources.map((x) => x.name), components, forwardPasses: this.forwardPasses - before, cachePasses: 0 };
    }
    let done = 0;
    opts.onProgress?.(0, this.shards.length);
    let forwardPasses = 0;
    let cachePasses = 0;
    const replies = await Promise.all(
      this.shards.map(async (s) => {
        const r = await this.pool.run(s.shard.index, { kind: 'sweep', backend: this.backend, model: this.modelNow(), shard: s.spec, sweep: spec, positionLabels: opts.positionLabels }, s.what, opts.signal);
        forwardPasses += r.passes ?? 0;
        cachePasses += r.cachePasses ?? 0;
        opts.onProgress?.(++done, this.shards.length);
        return r;
      }),
    );
    this.forwardPasses += forwardPasses;
    const values = combineWeighted(replies.flatMap((r) => r.values!), replies.flatMap((r) => r.sizes!), this.nExamples);
    return activationSweepResult(this, plan, values, { forwardPasses, cachePasses });
  }

  /**
   * Every target's metric on every example (patch --significance), each worker on its chunks,
   * concatenated in dataset order: the numbers of the in-process evaluation.
   */
  async evaluatePerExample(targets: SignificanceTargets, opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {}): Promise<SiteEvaluation> {
    let done = 0;
    opts.onProgress?.(0, this.shards.length);
    const replies = await Promise.all(
      this.shards.map(async (s) => {
        const r = await this.pool.run(s.shard.index, { kind: 'per-example', backend: this.backend, model: this.modelNow(), shard: s.spec, targets }, s.what, opts.signal);
        opts.onProgress?.(++done, this.shards.length);
        return r;
      }),
    );
    const n = this.nExamples;
    const count = replies[0].perExample!.length;
    const perExample = Array.from({ length: count }, (_, i) => {
      const row = new Float64Array(n);
      let at = 0;
      for (const r of replies) {
        row.set(r.perExample![i], at);
        at += r.perExample![i].length;
      }
      return row;
    });
    const base = new Float64Array(n);
    let at = 0;
    for (const r of replies) {
      base.set(r.base!, at);
      at += r.base!.length;
    }
    const forwardPasses = replies.reduce((s, r) => s + (r.passes ?? 0), 0);
    this.forwardPasses += forwardPasses;
    // the mean as evaluateSites takes it: the sum in dataset order over n
    const mean = perExample.map((row) => row.reduce((a, b) => a + b, 0) / n);
    return { perExample, mean, base, forwardPasses, cachePasses: replies.reduce((s, r) => s + (r.cachePasses ?? 0), 0) };
  }

  /** Frees the workers' caches of this patcher (the pool stays). */
  dispose(): void {
    for (const s of this.shards) this.pool.post(s.shard.index, { kind: 'close', shard: s.spec.key }, s.what);
  }

  private sparse(m: Float32Array): SparseMask {
    const full = this.fullMask();
    const index: number[] = [];
    for (let i = 0; i < m.length; i++) if (m[i] !== full[i]) index.push(i);
    return { index: Int32Array.from(index), value: Float32Array.from(index, (i) => m[i]) };
  }
}
