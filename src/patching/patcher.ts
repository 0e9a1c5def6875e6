import * as tf from '@tensorflow/tfjs';
import type { Transformer, VocabularySubset } from '../model/transformer.js';
import type { CircuitGraph } from '../graph/graph.js';
import { type MetricName, MetricTargets, lastLogits, metricMean, metricPerCopy, tokensRead } from '../metrics/index.js';
import { PatchingEngine, type RunCache } from './engine.js';
import { CircuitryError, checkpointPause } from '../errors.js';

/**
 * The dataset mean of each mask's metric from its chunk means (chunks[c][mask], in dataset
 * order, chunk c holding sizes[c] prompts). The one place chunk values are summed, in chunk
 * order, so a pool of workers that each hold some chunks gives the in-process numbers exactly.
 */
export function combineChunkValues(chunks: readonly (readonly number[])[], sizes: readonly number[], nExamples: number): number[] {
  const out = new Array<number>(chunks[0]?.length ?? 0).fill(0);
  chunks.forEach((values, c) => values.forEach((v, g) => (out[g] += (v * sizes[c]) / nExamples)));
  return out;
}

/** Clean/corrupted prompt pairs as token ids, with right and wrong answer sets. */
export interface PairData {
  readonly clean: readonly (readonly number[])[];
  readonly corrupted: readonly (readonly number[])[];
  readonly answers: readonly (readonly number[])[];
  readonly wrongs: readonly (readonly number[])[];
}

/**
 * noise: run the clean prompts, patched values come from the corrupted run (tests necessity).
 * denoise: run the corrupted prompts, patched values come from the clean run (tests sufficiency).
 */
export type Direction = 'noise' | 'denoise';
/** What a patched edge carries: the other run's value (default), zero, or the dataset mean. */
export type Ablation = 'patch' | 'zero' | 'mean';

export interface PatcherOptions {
  readonly metric: MetricName;
  readonly direction?: Direction;
  readonly ablation?: Ablation;
  /** Prompts per forward pass (default: all, at most 64). */
  readonly batchSize?: number;
  /** Float budget for stacking masks into one pass (default 2^26 floats of patch state). */
  readonly stackBudget?: number;
  /** At most this many prompt copies (masks × prompts) in one pass (default 256). */
  readonly maxRows?: number;
  /**
   * Unembed the whole vocabulary in patched passes even where the metric reads a few tokens
   * (logit difference): for comparisons (`npm run bench prune`); the values agree to float rounding.
   */
  readonly wholeVocabulary?: boolean;
}

export const DEFAULT_STACK_BUDGET = 2 ** 26;
export const DEFAULT_MAX_ROWS = 256;

/** Prompts per chunk for a batch size option and n examples (default: all, at most 64). */
export function effectiveBatchSize(batchSize: number | undefined, n: number): number {
  return Math.max(1, Math.min(batchSize ?? 64, n));
}

/**
 * What the algorithms that only evaluate masks (ACDC, verification, evaluation) need of a
 * patcher: the Patcher itself, or a pool of workers holding its chunks (src/scale).
 */
export interface MaskEvaluator {
  readonly graph: CircuitGraph;
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  readonly nExamples: number;
  readonly cleanMetric: number;
  readonly corruptedMetric: number;
  readonly baseMetric: number;
  readonly fullyPatchedMetric: number;
  /** Forward passes run so far (summed over workers). */
  readonly forwardPasses: number;
  /**
   * Masks one forward pass evaluates together (stacked copies), on every chunk: more masks per
   * call than this take more passes, not a larger one (ACDC speculates no further).
   */
  readonly masksPerPass: number;
  fullMask(): Float32Array;
  /**
   * Caches the run under `mask` (undefined frees it): masks that agree with it on every
   * destination below layer l then start at l from that run (Patcher.setBaseMask).
   */
  setBaseMask(mask: Float32Array | undefined): void;
  evaluateAsync(masks: readonly Float32Array[], opts?: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal }): Promise<number[]>;
  dispose(): void;
}

interface Chunk {
  readonly size: number;
  readonly clean: RunCache;
  readonly corrupted: RunCache;
  readonly targets: MetricTargets;
  /** The targets over the patcher's vocabulary subset (logit difference reads no other logits). */
  readonly subsetTargets?: MetricTargets;
  patch: tf.Tensor; // [nSrc, B, p, d]
  /** The run under the base mask (setBaseMask), built on first use. */
  base?: RunCache;
}

/**
 * The patching engine bound to a dataset: evaluates the metric under any set of masks (batched),
 * and its gradient with respect to the masks. Every algorithm (sweeps, EAP, ACDC, path patching)
 * goes through this class; none touches the model directly.
 */
export class Patcher implements MaskEvaluator {
  readonly engine: PatchingEngine;
  readonly graph: CircuitGraph;
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  readonly nExamples: number;
  /** The metric on the unpatched clean and corrupted runs. */
  readonly cleanMetric: number;
  readonly corruptedMetric: number;
  /** Prompts per chunk (the last chunk may hold fewer). */
  readonly batchSize: number;
  readonly stackBudget: number;
  readonly maxRows: number;
  /** Forward passes run so far (each of up to `stack` masks × a chunk of prompts). */
  forwardPasses = 0;
  /** Of forwardPasses, those that built base runs (setBaseMask): a pooled patcher counts them once per shard. */
  basePasses = 0;
  private readonly chunks: Chunk[];
  private base: { mask: Float32Array; key: string } | undefined;
  /** The answer and wrong tokens, unembedded alone in patched passes (logit difference only). */
  private readonly vocabulary: VocabularySubset | undefined;

  constructor(model: Transformer, graph: CircuitGraph, data: PairData, opts: PatcherOptions) {
    const n = data.clean.length;
    if (n === 0) throw new CircuitryError('the dataset has no examples');
    if (data.corrupted.length !== n || data.answers.length !== n || data.wrongs.length !== n) {
      throw new CircuitryError('clean, corrupted, answers and wrongs must have one entry per example');
    }
    data.clean.forEach((row, i) => {
      if (row.length !== data.corrupted[i].length) {
        throw new CircuitryError(`example ${i}: clean has ${row.length} tokens but corrupted has ${data.corrupted[i].length}; they must be the same length`);
      }
    });
    this.engine = new PatchingEngine(model, graph);
    this.graph = graph;
    this.metric = opts.metric;
    this.direction = opts.direction ?? 'noise';
    this.ablation = opts.ablation ?? 'patch';
    this.nExamples = n;
    this.stackBudget = opts.stackBudget ?? DEFAULT_STACK_BUDGET;
    this.maxRows = opts.maxRows ?? DEFAULT_MAX_ROWS;
    const bs = effectiveBatchSize(opts.batchSize, n);
    // a metric that reads a few tokens' logits (logit difference): the patched passes unembed only
    // those (the unpatched runs keep the whole vocabulary, for KL and for readers of their logits)
    const targetTokens = tokensRead(this.metric, data.answers, data.wrongs) ?? [];
    const valid = targetTokens.every((t) => Number.isInteger(t) && t >= 0 && t < model.cfg.dVocab); // (else MetricTargets says which)
    const few = targetTokens.length > 0 && valid && 2 * targetTokens.length <= model.cfg.dVocab && !opts.wholeVocabulary;
    this.vocabulary = few ? model.vocabularySubset(targetTokens) : undefined;
    const position = new Map(targetTokens.map((t, i) => [t, i]));
    const inSubset = (sets: PairData['answers']) => sets.map((set) => set.map((t) => position.get(t)!));
    this.chunks = [];
    for (let i = 0; i < n; i += bs) {
      const cache = (rows: PairData['clean']) => {
        const tokens = model.tokens(rows.slice(i, i + bs));
        try {
          return this.engine.cacheRun(tokens);
        } finally {
          tokens.dispose();
        }
      };
      const clean = cache(data.clean);
      const corrupted = cache(data.corrupted);
      const cleanLast = tf.tidy(() => lastLogits(clean.logits));
      const targets = new MetricTargets(data.answers.slice(i, i + bs), data.wrongs.slice(i, i + bs), model.cfg.dVocab, cleanLast);
      cleanLast.dispose();
      const subsetTargets = this.vocabulary ? new MetricTargets(inSubset(data.answers.slice(i, i + bs)), inSubset(data.wrongs.slice(i, i + bs)), targetTokens.length) : undefined;
      this.chunks.push({ size: clean.batch, clean, corrupted, targets, ...(subsetTargets ? { subsetTargets } : {}), patch: tf.keep(tf.zeros([0])) });
    }
    this.batchSize = bs;
    this.setPatchValues();
    const per = this.chunkMetrics();
    this.cleanMetric = combineChunkValues(per.clean.map((v) => [v]), this.chunkSizes, n)[0];
    this.corruptedMetric = combineChunkValues(per.corrupted.map((v) => [v]), this.chunkSizes, n)[0];
  }

  /** The metric of the unpatched run that patching starts from (clean when noising). */
  get baseMetric(): number {
    return this.direction === 'noise' ? this.cleanMetric : this.corruptedMetric;
  }

  /** The metric when every edge is patched (the corrupted run when noising). */
  get fullyPatchedMetric(): number {
    return this.direction === 'noise' ? this.corruptedMetric : this.cleanMetric;
  }

  /** A dense mask keeping every edge (1 on edges, 0 on unused entries). */
  fullMask(): Float32Array {
    return this.graph.denseEdgeArray(1);
  }

  /**
   * Sets the base mask: each chunk's run under it is cached (on first use: one pass per chunk),
   * and a mask that agrees with it on every destination below layer l starts at l from that run
   * when that is later than where it would start from the unpatched run. ACDC sets its circuit
   * here: each decision changes only its destination's layer and above (the visiting order is
   * reverse topological), so it reruns those layers alone. Values equal those of full passes to
   * float rounding. `key` names the mask (a pool worker compares it); undefined frees the runs.
   */
  setBaseMask(mask: Float32Array | undefined, key?: string): void {
    if (mask && key !== undefined && key === this.base?.key) return; // already set
    for (const c of this.chunks) {
      c.base?.dispose();
      c.base = undefined;
    }
    if (mask && mask.length !== this.graph.denseSize) throw new Error(`base mask of length ${mask.length}, expected ${this.graph.denseSize}`);
    this.base = mask ? { mask: Float32Array.from(mask), key: key ?? '' } : undefined;
  }

  /** The key given with the base mask (undefined without one). */
  get baseKey(): string | undefined {
    return this.base?.key;
  }

  /** Where a mask's pass starts, and from which cached run. */
  private startOf(mask: Float32Array): { start: number; fromBase: boolean } {
    const L = this.engine.model.cfg.nLayers;
    const plain = Math.min(L - 1, this.engine.firstPatchedLayer(mask));
    if (!this.base) return { start: plain, fromBase: false };
    const based = Math.min(L - 1, this.engine.firstPatchedLayer(mask, this.base.mask));
    return based > plain ? { start: based, fromBase: true } : { start: plain, fromBase: false };
  }

  private baseRun(c: Chunk): RunCache {
    if (!c.base) {
      c.base = this.engine.cacheMaskedRun(this.runOf(c), c.patch, this.base!.mask);
      this.forwardPasses++;
      this.basePasses++;
    }
    return c.base;
  }

  /**
   * The metric (batch mean over the dataset) for each mask. Masks that patch nothing below the
   * same layer are stacked into one pass that starts at that layer.
   */
  evaluate(masks: readonly Float32Array[], opts: { onProgress?: (done: number, total: number) => void } = {}): number[] {
    const raw = this.chunks.map(() => new Array<number>(masks.length).fill(0));
    for (const _pass of this.passes(masks, raw, opts.onProgress)) {
      // every pass runs synchronously
    }
    return combineChunkValues(raw, this.chunkSizes, this.nExamples);
  }

  /**
   * `evaluate`, yielding to the event loop after every forward pass so that a signal handler
   * (Ctrl-C) can run; throws InterruptedError within one pass of `signal` firing. Same values.
   */
  async evaluateAsync(masks: readonly Float32Array[], opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {}): Promise<number[]> {
    return combineChunkValues(await this.evaluateChunks(masks, opts), this.chunkSizes, this.nExamples);
  }

  /**
   * Per chunk of prompts, the metric (chunk mean) under each mask: what `evaluate` combines.
   * A worker holding some chunks of a larger dataset returns these, and the parent combines
   * every worker's chunks in dataset order (combineChunkValues), giving the same numbers.
   */
  async evaluateChunks(masks: readonly Float32Array[], opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {}): Promise<number[][]> {
    const raw = this.chunks.map(() => new Array<number>(masks.length).fill(0));
    for (const _pass of this.passes(masks, raw, opts.onProgress)) await checkpointPause(opts.signal);
    return raw;
  }

  /** Prompts per chunk, in dataset order. */
  get chunkSizes(): number[] {
    return this.chunks.map((c) => c.size);
  }

  /** Per chunk, the metric (chunk mean) of the unpatched clean and corrupted runs. */
  chunkMetrics(): { clean: number[]; corrupted: number[] } {
    const one = (run: (c: Chunk) => RunCache) =>
      this.chunks.map((c) => {
        const v = metricMean(this.metric, run(c).logits, c.targets);
        const x = v.dataSync()[0];
        v.dispose();
        return x;
      });
    return { clean: one((c) => c.clean), corrupted: one((c) => c.corrupted) };
  }

  /** Masks a pass stacks on `chunk`: the dense pass's buffers ([K, nSrc, B·p·d] and its transients) within the budget. */
  private stackOf(chunk: Chunk): number {
    const perCopy = chunk.patch.size / chunk.size; // nSrc · p · d floats per prompt
    return Math.max(1, Math.min(Math.floor(this.maxRows / chunk.size), Math.floor(this.stackBudget / (perCopy * chunk.size * 3))));
  }

  get masksPerPass(): number {
    return Math.min(...this.chunks.map((c) => this.stackOf(c)));
  }

  /** The passes of `evaluate`, one per iteration; chunk c's value of mask g goes to raw[c][g]. */
  private *passes(masks: readonly Float32Array[], raw: number[][], onProgress?: (done: number, total: number) => void): Generator<void> {
    const total = masks.length * this.chunks.length;
    let done = 0;
    onProgress?.(0, total);
    const plans = masks.map((m) => this.startOf(m));
    const key = (i: number) => 2 * plans[i].start + (plans[i].fromBase ? 1 : 0);
    const order = masks.map((_, i) => i).sort((a, b) => key(a) - key(b) || a - b);
    for (const [ci, chunk] of this.chunks.entries()) {
      const stack = this.stackOf(chunk);
      for (let i = 0; i < order.length; ) {
        const { start, fromBase } = plans[order[i]];
        const first = key(order[i]);
        const group: number[] = [];
        while (i < order.length && group.length < stack && key(order[i]) === first) group.push(order[i++]);
        const run = fromBase ? this.baseRun(chunk) : this.runOf(chunk);
        const values = tf.tidy(() => {
          const vocabulary = this.vocabulary;
          const logits = this.engine.maskedForward({ run, patch: chunk.patch, masks: group.map((g) => masks[g]), startAtLayer: start, vocabulary });
          return metricPerCopy(this.metric, logits, vocabulary ? chunk.subsetTargets! : chunk.targets);
        });
        const v = values.dataSync();
        values.dispose();
        this.forwardPasses++;
        group.forEach((g, j) => (raw[ci][g] = v[j]));
        done += group.length;
        onProgress?.(done, total);
        yield;
      }
    }
  }

  /** The metric under one mask. */
  evaluateOne(mask: Float32Array): number {
    return this.evaluate([mask])[0];
  }

  /**
   * d metric / d mask at `mask` (default: all edges kept), dense like the mask, with the
   * metric's value there. One forward and one backward pass per chunk of prompts.
   */
  maskGradient(mask?: Float32Array): { value: number; grad: Float32Array } {
    const m = mask ?? this.fullMask();
    const grad = new Float32Array(this.graph.denseSize);
    let value = 0;
    for (const chunk of this.chunks) {
      const maskT = tf.tensor3d(m, [1, this.graph.nDst, this.graph.nSrc]);
      const f = (mt: tf.Tensor) => metricMean(this.metric, this.engine.maskedForward({ run: this.runOf(chunk), patch: chunk.patch, masks: mt }), chunk.targets);
      const { value: v, grad: g } = tf.valueAndGrad(f)(maskT);
      const w = chunk.size / this.nExamples;
      value += v.dataSync()[0] * w;
      const gd = g.dataSync();
      for (let i = 0; i < grad.length; i++) grad[i] += gd[i] * w;
      tf.dispose([maskT, v, g]);
      this.forwardPasses += 2;
    }
    return { value, grad };
  }

  /**
   * Runs `fn` once per chunk with the tensors an algorithm needs beyond masks (the caches of
   * both runs and the metric targets), weighting each chunk's number by its share of examples.
   */
  weighted(fn: (chunk: { clean: RunCache; corrupted: RunCache; targets: MetricTargets; patch: tf.Tensor; run: RunCache; size: number }) => tf.Scalar | number): number {
    let total = 0;
    for (const c of this.chunks) {
      const r = fn({ ...c, run: this.runOf(c) });
      const v = typeof r === 'number' ? r : r.dataSync()[0];
      if (typeof r !== 'number') r.dispose();
      total += (v * c.size) / this.nExamples;
    }
    return total;
  }

  /** Chunks of the dataset (advanced use: sweeps and attribution run their own passes). */
  forEachChunk(fn: (chunk: { clean: RunCache; corrupted: RunCache; targets: MetricTargets; patch: tf.Tensor; run: RunCache; size: number; weight: number }) => void): void {
    for (const c of this.chunks) fn({ ...c, run: this.runOf(c), weight: c.size / this.nExamples });
  }

  dispose(): void {
    for (const c of this.chunks) {
      c.base?.dispose();
      c.clean.dispose();
      c.corrupted.dispose();
      c.targets.dispose();
      c.subsetTargets?.dispose();
      c.patch.dispose();
    }
    this.vocabulary?.dispose();
    this.engine.dispose();
  }

  private runOf(c: Chunk): RunCache {
    return this.direction === 'noise' ? c.clean : c.corrupted;
  }

  private setPatchValues(): void {
    const other = (c: Chunk) => (this.direction === 'noise' ? c.corrupted : c.clean);
    let mean: tf.Tensor | undefined;
    if (this.ablation === 'mean') {
      // the dataset mean of the other run's source outputs, per position
      mean = tf.tidy(() => {
        let sum: tf.Tensor = tf.zeros([this.graph.nSrc, 1, ...other(this.chunks[0]).sources.shape.slice(2)]);
        for (const c of this.chunks) sum = tf.add(sum, tf.sum(other(c).sources, 1, true));
        return tf.div(sum, this.nExamples);
      });
    }
    for (const c of this.chunks) {
      c.patch.dispose();
      const src = other(c).sources;
      c.patch = this.ablation === 'patch' ? tf.keep(src.clone()) : this.ablation === 'zero' ? tf.keep(tf.zerosLike(src)) : tf.keep(tf.tile(mean!, [1, c.size, 1, 1]));
    }
    mean?.dispose();
  }
}
