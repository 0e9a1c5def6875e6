import * as tf from '@tensorflow/tfjs';
import { type MetricName, MetricTargets, lastLogits, metricMean } from '../metrics/index.js';
import type { Ablation, Direction, PairData, Patcher } from '../patching/patcher.js';
import { CircuitryError } from '../errors.js';
import { columnDifference } from '../backend/simd.js';
import type { EdgeGradients } from './gradients.js';
import type { AttributionInput, AttributionOptions } from './types.js';

/** What one chunk of prompts gives an attribution algorithm (all borrowed for the callback). */
export interface ChunkWork {
  /** The run that is differentiated (clean when noising): [B, p]. */
  readonly tokens: tf.Tensor2D;
  readonly targets: MetricTargets;
  /** What a patched source carries: [nSrc, B·p·d]. */
  readonly patch: tf.Tensor2D;
  /** The run's own source outputs [nSrc, B·p·d], when already known (else capture them). */
  readonly runSources?: tf.Tensor2D;
  /** The chunk's share of the dataset (B / n). */
  readonly weight: number;
  /**
   * A part of a chunk (workParts): `patch` and `runSources` stay the whole chunk's, of which
   * columns [from, from + count) are this part's prompts.
   */
  readonly columns?: { readonly from: number; readonly count: number };
  /** The metric on the other run (chunk mean), when a pass computed it. */
  readonly patchedMetric?: number;
}

/** The dataset in chunks, with the patch values prepared; counts the passes spent on that. */
export interface ChunkSource {
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  readonly nExamples: number;
  readonly nChunks: number;
  /** Forward passes spent preparing chunks so far. */
  readonly forwardPasses: number;
  /** The chunks one at a time; each chunk's tensors are released when the next is asked for (or the loop ends). */
  each(): Generator<ChunkWork>;
  dispose(): void;
}

const DEFAULT_BATCH = 32;

/**
 * Tokens × layers × width of one gradient pass at most: a chunk of more runs as parts of fewer
 * prompts. A pass's tape and gradients take about 80 floats per unit (measured on GPT-2 small with
 * wasm: 331 MB of new allocations at the peak of a pass of 8 × 14 tokens), and wasm memory never
 * shrinks, so the largest pass sets a worker's memory for the rest of the run; 2^19 units is
 * ~170 MB (GPT-2 small: 4 prompts of 14 tokens per pass; the zoo's models: whole chunks).
 */
const GRADIENT_PASS_UNITS = 2 ** 19;

/** The most prompts of `seqLen` tokens that one gradient pass of the model takes. */
export function promptsPerGradientPass(cfg: { nLayers: number; dModel: number }, seqLen: number): number {
  return Math.max(1, Math.floor(GRADIENT_PASS_UNITS / (seqLen * cfg.nLayers * cfg.dModel)));
}

/**
 * A chunk's work in parts of at most `maxPrompts` prompts (the chunk itself when it is that
 * small). Each part has its slice of the tokens, targets and sources and its share of the
 * weight, so the parts' weighted sums are the chunk's; its tensors are freed when the next part
 * is asked for. The chunk's patched metric stays with the chunk.
 */
export function* workParts(work: ChunkWork, maxPrompts: number): Generator<ChunkWork> {
  const [B, p] = work.tokens.shape;
  if (B <= maxPrompts) {
    yield work;
    return;
  }
  const perPrompt = work.patch.shape[1] / B; // p·d
  for (let start = 0; start < B; start += maxPrompts) {
    const n = Math.min(maxPrompts, B - start);
    const tokens = tf.slice(work.tokens, [start, 0], [n, p]);
    const targets = work.targets.rows(start, n);
    try {
      // the sources are not copied: the part reads its columns of the chunk's
      const { patch, runSources } = work;
      yield { tokens, targets, patch, ...(runSources ? { runSources } : {}), weight: (work.weight * n) / B, columns: { from: start * perPrompt, count: n * perPrompt } };
    } finally {
      tokens.dispose();
      targets.dispose();
    }
  }
}

/**
 * Where a work's prompts sit in a sources tensor: the part's columns of the chunk's `patch` or
 * `runSources`, or all of a tensor the part's own pass made.
 */
export function columnsOf(work: ChunkWork, t: tf.Tensor2D): { from: number; count: number } {
  if (work.columns && (t === work.patch || t === work.runSources)) return work.columns;
  return { from: 0, count: t.shape[1] };
}

/** patch − run sources over the work's prompts, [nSrc, count] (run sources: the chunk's, or the part's own). */
export function sourceDifference(work: ChunkWork, runSources: tf.Tensor2D): tf.Tensor2D {
  const [p, r] = [columnsOf(work, work.patch), columnsOf(work, runSources)];
  if (p.count !== r.count) throw new Error(`sourceDifference: ${p.count} patch columns against ${r.count} run columns`);
  return columnDifference(work.patch, p.from, runSources, r.from, p.count);
}

/** Validated metric, direction and ablation of an attribution run. */
export function resolveRunOptions(input: AttributionInput, opts: AttributionOptions): { metric: MetricName; direction: Direction; ablation: Ablation } {
  if ('patcher' in input) {
    const p = input.patcher;
    for (const [key, given, own] of [['metric', opts.metric, p.metric], ['direction', opts.direction, p.direction], ['ablation', opts.ablation, p.ablation]] as const) {
      if (given !== undefined && given !== own) throw new CircuitryError(`attribution ${key} '${given}' differs from the Patcher's '${own}': build the Patcher with it`);
    }
    return { metric: p.metric, direction: p.direction, ablation: p.ablation };
  }
  if (!opts.metric) throw new CircuitryError('attribution needs a metric (logit-diff, prob, logprob or kl)');
  const direction = opts.direction ?? 'noise';
  if (direction !== 'noise' && direction !== 'denoise') throw new CircuitryError(`direction: expected noise or denoise, got '${String(direction)}'`);
  const ablation = opts.ablation ?? 'patch';
  if (ablation !== 'patch' && ablation !== 'zero' && ablation !== 'mean') throw new CircuitryError(`ablation: expected patch, zero or mean, got '${String(ablation)}'`);
  return { metric: opts.metric, direction, ablation };
}

/** Gradient methods need a differentiable metric. */
export function checkDifferentiable(metric: MetricName): void {
  if (metric === 'accuracy') {
    throw new CircuitryError("metric 'accuracy' is piecewise constant: its gradient is zero everywhere, so attribution cannot use it; use logit-diff, prob, logprob or kl (or exact patching)");
  }
}

export function checkData(data: PairData): void {
  const n = data.clean.length;
  if (n === 0) throw new CircuitryError('the dataset has no examples');
  if (data.corrupted.length !== n || data.answers.length !== n || data.wrongs.length !== n) {
    throw new CircuitryError('clean, corrupted, answers and wrongs must have one entry per example');
  }
  data.clean.forEach((row, i) => {
    if (row.length !== data.corrupted[i].length) throw new CircuitryError(`example ${i}: clean has ${row.length} tokens but corrupted has ${data.corrupted[i].length}; they must be the same length`);
    if (row.length !== data.clean[0].length) throw new CircuitryError(`example ${i} has ${row.length} tokens but example 0 has ${data.clean[0].length}; attribution runs one length per dataset`);
  });
}

/** Chunks of a Patcher: its cached runs, patch values and targets; no passes are spent. */
export function patcherChunks(patcher: Patcher): ChunkSource {
  let n = 0;
  let chunks = 0;
  patcher.forEachChunk(() => {
    chunks++;
  });
  n = patcher.nExamples;
  const patched = patcher.ablation === 'patch' ? patcher.fullyPatchedMetric : undefined;
  return {
    metric: patcher.metric,
    direction: patcher.direction,
    ablation: patcher.ablation,
    nExamples: n,
    nChunks: chunks,
    forwardPasses: 0,
    *each() {
      const list: Parameters<Parameters<Patcher['forEachChunk']>[0]>[0][] = [];
      patcher.forEachChunk((c) => list.push(c));
      for (const c of list) {
        const flat = (t: tf.Tensor) => tf.reshape(t, [t.shape[0], -1]) as tf.Tensor2D;
        const patch = flat(c.patch);
        const runSources = flat(c.run.sources);
        try {
          yield { tokens: c.run.tokens, targets: c.targets, patch, runSources, weight: c.weight, ...(patched !== undefined ? { patchedMetric: patched } : {}) };
        } finally {
          tf.dispose([patch, runSources]);
        }
      }
    },
    dispose() {
      // the Patcher belongs to the caller
    },
  };
}

/**
 * Chunks of a dataset for a model: per chunk, one forward pass of the other run gives the patch
 * values (patch ablation); zero ablation needs none; mean ablation averages the other run's
 * sources over the dataset first (one pass per chunk, once). KL needs the clean run's logits,
 * which cost one extra forward pass per chunk when the clean run is the one differentiated.
 */
export function dataChunks(eg: EdgeGradients, data: PairData, opts: { metric: MetricName; direction: Direction; ablation: Ablation; batchSize?: number }): ChunkSource {
  checkData(data);
  const { model, graph } = eg;
  const n = data.clean.length;
  const bs = opts.batchSize ?? Math.min(n, DEFAULT_BATCH);
  if (!Number.isInteger(bs) || bs < 1) throw new CircuitryError(`batch size: expected a positive integer, got ${bs}`);
  const starts: number[] = [];
  for (let i = 0; i < n; i += bs) starts.push(i);
  const { metric, direction, ablation } = opts;
  const runRows = direction === 'noise' ? data.clean : data.corrupted;
  const otherRows = direction === 'noise' ? data.corrupted : data.clean;
  let passes = 0;
  let mean: tf.Tensor | undefined; // [nSrc, 1, p·d]
  const ensureMean = () => {
    if (mean || ablation !== 'mean') return;
    let sum: tf.Tensor | undefined;
    for (const s of starts) {
      const tokens = model.tokens(otherRows.slice(s, s + bs));
      const { sources, logits } = eg.forwardSources(tokens);
      passes++;
      const b = tokens.shape[0];
      const part = tf.tidy(() => tf.sum(tf.reshape(sources, [graph.nSrc, b, -1]), 1, true));
      tf.dispose([tokens, sources, logits]);
      if (sum) {
        const next = tf.add(sum, part);
        tf.dispose([sum, part]);
        sum = next;
      } else sum = part;
    }
    mean = tf.tidy(() => tf.div(sum!, n));
    sum!.dispose();
  };
  return {
    metric,
    direction,
    ablation,
    nExamples: n,
    nChunks: starts.length,
    get forwardPasses() {
      return passes;
    },
    *each() {
      ensureMean();
      for (const s of starts) {
        const owned: tf.Tensor[] = [];
        const own = <T extends tf.Tensor>(t: T): T => {
          owned.push(t);
          return t;
        };
        let targets: MetricTargets | undefined;
        try {
          const tokens = own(model.tokens(runRows.slice(s, s + bs)));
          const b = tokens.shape[0];
          let patch: tf.Tensor2D;
          let otherLogits: tf.Tensor | undefined;
          if (ablation === 'patch') {
            const other = own(model.tokens(otherRows.slice(s, s + bs)));
            const fs = eg.forwardSources(other);
            passes++;
            patch = own(fs.sources);
            otherLogits = own(fs.logits);
          } else if (ablation === 'zero') {
            patch = own(tf.zeros([graph.nSrc, tokens.shape[0] * tokens.shape[1] * model.cfg.dModel]));
          } else {
            patch = own(tf.tidy(() => tf.reshape(tf.add(mean!, tf.zeros([1, b, 1])), [graph.nSrc, -1]) as tf.Tensor2D));
          }
          let cleanLast: tf.Tensor2D | undefined;
          if (metric === 'kl') {
            if (direction === 'denoise' && otherLogits) cleanLast = own(tf.tidy(() => lastLogits(otherLogits!)));
            else {
              const cleanTokens = own(model.tokens(data.clean.slice(s, s + bs)));
              const logits = own(model.forward(cleanTokens, { lastPositionOnly: true, lastQueryOnly: true }));
              passes++;
              cleanLast = own(tf.tidy(() => lastLogits(logits)));
            }
          }
          targets = new MetricTargets(data.answers.slice(s, s + bs), data.wrongs.slice(s, s + bs), model.cfg.dVocab, cleanLast);
          let patchedMetric: number | undefined;
          if (otherLogits) {
            const v = metricMean(metric, otherLogits, targets);
            patchedMetric = v.dataSync()[0];
            v.dispose();
          }
          yield { tokens, targets, patch, weight: b / n, ...(patchedMetric !== undefined ? { patchedMetric } : {}) };
        } finally {
          targets?.dispose();
          tf.dispose(owned);
        }
      }
    },
    dispose() {
      mean?.dispose();
      mean = undefined;
    },
  };
}
