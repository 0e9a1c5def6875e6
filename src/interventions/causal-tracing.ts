import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import { type BlockHook, type HookFn, type HookName, blockHook } from '../model/hooks.js';
import { MetricTargets, metricPerExample } from '../metrics/index.js';
import type { Sweep } from '../graph/circuit-types.js';
import type { OnProgress } from '../patching/progress.js';
import { floatsPerPrompt } from './sites.js';
import { SeededRandom } from './rng.js';
import { CircuitryError } from '../errors.js';

/**
 * Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT").
 *
 * The corrupted run adds Gaussian noise N(0, σ²) to the token embeddings (hook_embed) of chosen
 * positions, σ = k × the standard deviation of the embedding matrix's entries (k = 3 by
 * default), drawn from a seeded generator, `samples` independent draws. Then, one (layer,
 * position) at a time, the clean run's hidden state there is restored in the corrupted run —
 * the residual stream (resid_pre or resid_post), the attention output or the MLP output — and
 * the probability of the answer is measured, averaged over the noise samples. The maps are
 * layers × positions; the indirect effect of a state is restored − corrupted. No corrupted
 * prompt is needed: the noise is the corruption.
 *
 * Restorations are stacked: one pass runs K restorations × the noise samples as K·S rows, and
 * starts at the lowest restored layer from the cached corrupted residual stream.
 */

export const TRACE_KINDS = ['resid_pre', 'resid_post', 'attn_out', 'mlp_out'] as const;
export type TraceKind = (typeof TRACE_KINDS)[number];

const KIND_HOOK: Record<TraceKind, BlockHook> = {
  resid_pre: 'hook_resid_pre',
  resid_post: 'hook_resid_post',
  attn_out: 'hook_attn_out',
  mlp_out: 'hook_mlp_out',
};

export interface CausalTraceOptions {
  /** Positions whose token embeddings get noise (default: every position but the last). */
  readonly noisePositions?: readonly number[];
  /** σ as a multiple of the embedding matrix's standard deviation (default 3). */
  readonly sigmaScale?: number;
  /** σ itself (overrides sigmaScale). */
  readonly sigma?: number;
  /** Noise draws averaged over (default 10). */
  readonly samples?: number;
  readonly seed?: number;
  /** Which states to restore (default all the model has). */
  readonly kinds?: readonly TraceKind[];
  /** Restore this many consecutive layers around each layer together (ROME uses 10 for attn/mlp; default 1). */
  readonly window?: number;
  /** The measure of the answer (default prob, ROME's; logprob also possible). */
  readonly metric?: 'prob' | 'logprob';
  /** Float budget of one stacked pass (default 2^25). */
  readonly stackBudget?: number;
  /**
   * Only every `count`-th restoration of the pass order, from `index` (a pool worker's share:
   * interleaved, so that every share gets restorations of every depth). The others are NaN in
   * the maps; mergeTraceShares puts the shares together.
   */
  readonly share?: { readonly index: number; readonly count: number };
  readonly onProgress?: OnProgress;
}

export interface TraceMap {
  readonly kind: TraceKind;
  /** Layer labels (rows) and position labels (cols). */
  readonly rows: readonly string[];
  readonly cols: readonly string[];
  /** [layer][position]: the answer's measure with that state restored (mean over samples). */
  readonly restored: readonly (readonly number[])[];
  /** restored − corrupted. */
  readonly indirect: readonly (readonly number[])[];
  /** (restored − corrupted) / (clean − corrupted). */
  readonly recovery: readonly (readonly number[])[];
  /** The (layer, position) with the largest restored value. */
  readonly peak: { readonly layer: number; readonly position: number; readonly value: number };
}

export interface CausalTraceResult {
  readonly tokens: readonly number[];
  readonly answer: readonly number[];
  readonly metric: 'prob' | 'logprob';
  readonly noisePositions: readonly number[];
  readonly sigma: number;
  /** σ / the embedding std (undefined when σ was given directly). */
  readonly sigmaScale?: number;
  readonly embeddingStd: number;
  readonly samples: number;
  readonly seed: number;
  readonly window: number;
  /** The answer's measure on the clean run and on the noised run (mean over samples). */
  readonly clean: number;
  readonly corrupted: number;
  readonly corruptedPerSample: readonly number[];
  readonly maps: readonly TraceMap[];
  readonly forwardPasses: number;
}

/**
 * The standard deviation of every entry of the token embedding matrix, read through hook_embed
 * (all vocabulary ids, in chunks).
 */
export function embeddingStd(model: Transformer): number {
  const { dVocab: V, nCtx, dModel: d } = model.cfg;
  const width = Math.min(nCtx, V);
  const perChunk = width * Math.max(1, Math.floor(8192 / width));
  let sum = 0;
  let sumSq = 0;
  for (let start = 0; start < V; start += perChunk) {
    const count = Math.min(perChunk, V - start);
    const rows = Math.ceil(count / width);
    // the last row is padded with id 0, weighted 0
    const ids = Array.from({ length: rows }, (_, r) => Array.from({ length: width }, (_, i) => (r * width + i < count ? start + r * width + i : 0)));
    const weight = new Float32Array(rows * width).map((_, i) => (i < count ? 1 : 0));
    let captured: tf.Tensor | undefined;
    model.forward(ids, { stopAtLayer: 0, hooks: { hook_embed: (a) => void (captured = tf.keep(a.clone())) } }).dispose();
    const stats = tf.tidy(() => {
      const flat = tf.mul(tf.reshape(captured!, [rows * width, d]), tf.tensor2d(weight, [rows * width, 1]));
      return tf.stack([tf.sum(flat), tf.sum(tf.square(flat))]);
    });
    captured!.dispose();
    const [s, sq] = stats.dataSync();
    stats.dispose();
    sum += s;
    sumSq += sq;
  }
  const n = V * d;
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sumSq / n - mean * mean));
}

/** Runs causal tracing of `answer` (a token id or a set whose probabilities are summed) after `tokens`. */
export function causalTrace(model: Transformer, tokens: readonly number[], answer: number | readonly number[], opts: CausalTraceOptions = {}): CausalTraceResult {
  const cfg = model.cfg;
  const { nLayers: L, dModel: d } = cfg;
  const P = tokens.length;
  if (P === 0) throw new CircuitryError('causal tracing: the prompt is empty');
  model.tokens([tokens]).dispose(); // validates ids and length
  const answers = typeof answer === 'number' ? [answer] : [...answer];
  if (answers.length === 0) throw new CircuitryError('causal tracing: no answer token given');
  for (const a of answers) {
    if (!Number.isInteger(a) || a < 0 || a >= cfg.dVocab) throw new CircuitryError(`causal tracing: answer token ${a} is outside the vocabulary (0..${cfg.dVocab - 1})`);
  }
  const noisePositions = opts.noisePositions ? [...opts.noisePositions] : Array.from({ length: Math.max(1, P - 1) }, (_, i) => i);
  if (noisePositions.length === 0) throw new CircuitryError('noise positions: give at least one position to corrupt');
  for (const pos of noisePositions) {
    if (!Number.isInteger(pos) || pos < 0 || pos >= P) throw new CircuitryError(`noise positions: position ${pos} is outside the prompt (positions 0..${P - 1} of ${P} tokens)`);
  }
  if (new Set(noisePositions).size !== noisePositions.length) throw new CircuitryError(`noise positions: ${noisePositions.join(',')} lists a position twice`);
  const samples = opts.samples ?? 10;
  if (!Number.isInteger(samples) || samples < 1 || samples > 4096) throw new CircuitryError(`samples: expected an integer from 1 to 4096, got ${String(samples)}`);
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new CircuitryError(`seed: expected an integer, got ${String(seed)}`);
  const window = opts.window ?? 1;
  if (!Number.isInteger(window) || window < 1 || window > L) throw new CircuitryError(`window: expected an integer from 1 to ${L} (the model's layers), got ${String(window)}`);
  const metric = opts.metric ?? 'prob';
  if (metric !== 'prob' && metric !== 'logprob') throw new CircuitryError(`causal tracing metric: expected prob or logprob, got '${String(metric)}'`);
  const kinds = traceKinds(cfg, opts.kinds);
  for (const k of kinds) {
    if (!(TRACE_KINDS as readonly string[]).includes(k)) throw new CircuitryError(`causal tracing: unknown state '${String(k)}' (expected one of ${TRACE_KINDS.join(', ')})`);
    if (k === 'mlp_out' && cfg.attnOnly) throw new CircuitryError('causal tracing: mlp_out cannot be restored, the model is attention-only');
  }
  const std = embeddingStd(model);
  let sigma: number;
  let sigmaScale: number | undefined;
  if (opts.sigma !== undefined) {
    if (!(Number.isFinite(opts.sigma) && opts.sigma > 0)) throw new CircuitryError(`sigma: expected a positive number, got ${String(opts.sigma)}`);
    sigma = opts.sigma;
  } else {
    sigmaScale = opts.sigmaScale ?? 3;
    if (!(Number.isFinite(sigmaScale) && sigmaScale > 0)) throw new CircuitryError(`sigma: expected a positive multiple of the embedding std, got ${String(opts.sigmaScale)}`);
    sigma = sigmaScale * std;
  }

  // noise [S, P, d], zero outside the noised positions
  const rng = new SeededRandom(seed);
  const noiseData = new Float32Array(samples * P * d);
  for (let s = 0; s < samples; s++) for (const pos of noisePositions) noiseData.set(rng.normals(d, sigma), (s * P + pos) * d);

  const S = samples;
  const targets = new MetricTargets([answers], [[]], cfg.dVocab);
  const hookNames: HookName[] = [];
  for (const k of kinds) for (let l = 0; l < L; l++) hookNames.push(blockHook(l, KIND_HOOK[k]));
  const residNames = Array.from({ length: L }, (_, l) => blockHook(l, 'hook_resid_pre'));
  const noise = tf.tensor3d(noiseData, [S, P, d]);
  let forwardPasses = 0;
  const kept: tf.Tensor[] = [noise];
  try {
    const tok1 = model.tokens([tokens]);
    kept.push(tok1);
    const clean = model.runWithCache(tok1, hookNames);
    forwardPasses++;
    kept.push(clean.logits, ...clean.cache.values());
    const cleanValue = readPerRow(metric, clean.logits, targets)[0];
    const tokS = tf.tidy(() => tf.tile(tok1, [S, 1]) as tf.Tensor2D);
    kept.push(tokS);
    const addNoise = (reps: number): HookFn => (a) => tf.add(a, reps === 1 ? noise : tf.reshape(tf.add(tf.expandDims(noise, 0), tf.zeros([reps, 1, 1, 1])), [reps * S, P, d]));
    const corrupted = model.runWithCache(tokS, residNames, { hooks: { hook_embed: addNoise(1) } });
    forwardPasses++;
    kept.push(corrupted.logits, ...corrupted.cache.values());
    const corruptedPerSample = readPerRow(metric, corrupted.logits, targets);
    const corruptedValue = mean(corruptedPerSample);

    // restorations: (kind, layer, position), each restoring `window` layers at that position
    interface Restore {
      kind: TraceKind;
      layer: number;
      pos: number;
      layers: number[];
    }
    const restores: Restore[] = [];
    const lo = Math.floor(window / 2);
    for (const kind of kinds) {
      for (let l = 0; l < L; l++) {
        const first = Math.max(0, Math.min(l - lo, L - window));
        const layers = Array.from({ length: window }, (_, i) => first + i);
        for (let pos = 0; pos < P; pos++) restores.push({ kind, layer: l, pos, layers });
      }
    }
    const startOf = (r: Restore) => Math.min(...r.layers);
    const share = opts.share;
    const order = restores
      .map((_, i) => i)
      .sort((a, b) => startOf(restores[a]) - startOf(restores[b]) || a - b)
      .filter((_, j) => !share || j % share.count === share.index);
    const values = new Float64Array(restores.length).fill(NaN);
    const K = Math.max(1, Math.floor((opts.stackBudget ?? 2 ** 25) / (S * floatsPerPrompt(cfg, P))));
    opts.onProgress?.(0, order.length);
    let done = 0;
    for (let i = 0; i < order.length; ) {
      const group: Restore[] = [];
      const ids: number[] = [];
      while (i < order.length && group.length < K) {
        ids.push(order[i]);
        group.push(restores[order[i++]]);
      }
      const k = group.length;
      const start = Math.min(...group.map(startOf));
      const perRow = tf.tidy(() => {
        const hooks = new Map<HookName, HookFn>();
        const byHook = new Map<HookName, number[]>(); // hook -> copies restoring there, as (copy·P + pos) cells
        group.forEach((r, c) => {
          for (const l of r.layers) {
            const name = blockHook(l, KIND_HOOK[r.kind]);
            if (!byHook.has(name)) byHook.set(name, []);
            byHook.get(name)!.push(c * P + r.pos);
          }
        });
        for (const [name, cells] of byHook) {
          const maskData = new Float32Array(k * P);
          for (const cell of cells) maskData[cell] = 1;
          const mask = tf.tensor4d(maskData, [k, 1, P, 1]);
          const cleanAct = tf.expandDims(clean.cache.get(name)!, 0); // [1, 1, P, w]
          hooks.set(name, (act) => {
            const w = act.shape[act.shape.length - 1];
            const a = tf.reshape(act, [k, S, P, w]);
            return tf.reshape(tf.add(a, tf.mul(mask, tf.sub(cleanAct, a))), act.shape);
          });
        }
        let logits: tf.Tensor;
        if (start === 0) {
          hooks.set('hook_embed', addNoise(k));
          logits = model.forward(k === 1 ? tokS : tf.tile(tok1, [k * S, 1]), { hooks });
        } else {
          const r = corrupted.cache.get(blockHook(start, 'hook_resid_pre'))!;
          const residual = k === 1 ? r : tf.reshape(tf.add(tf.expandDims(r, 0), tf.zeros([k, 1, 1, 1])), [k * S, P, d]);
          logits = model.forward(tokS, { hooks, startAtLayer: start, residual });
        }
        return metricPerExample(metric, logits, targets);
      });
      const data = perRow.dataSync();
      perRow.dispose();
      forwardPasses++;
      ids.forEach((id, c) => {
        let s = 0;
        for (let j = 0; j < S; j++) s += data[c * S + j];
        values[id] = s / S;
      });
      done += k;
      opts.onProgress?.(done, order.length);
    }

    const maps: TraceMap[] = kinds.map((kind) => {
      const restored = Array.from({ length: L }, () => new Array<number>(P).fill(NaN));
      restores.forEach((r, i) => {
        if (r.kind === kind) restored[r.layer][r.pos] = values[i];
      });
      return traceMap(kind, restored, cleanValue, corruptedValue);
    });
    return {
      tokens: [...tokens],
      answer: answers,
      metric,
      noisePositions,
      sigma,
      ...(sigmaScale !== undefined ? { sigmaScale } : {}),
      embeddingStd: std,
      samples,
      seed,
      window,
      clean: cleanValue,
      corrupted: corruptedValue,
      corruptedPerSample,
      maps,
      forwardPasses,
    };
  } finally {
    tf.dispose(kept);
    targets.dispose();
  }
}

/** A trace map as an entry of a circuit file's `meta.sweeps` (restored measure and recovery). */
export function traceMapToSweep(result: CausalTraceResult, map: TraceMap, positionLabels?: readonly string[]): Sweep {
  return {
    kind: `trace:${map.kind}`,
    direction: 'denoise',
    metric: result.metric,
    rows: [...map.rows],
    cols: positionLabels ? [...positionLabels] : [...map.cols],
    recovery: map.recovery.map((r) => [...r]),
    value: map.restored.map((r) => [...r]),
  };
}

/** The states traced: `kinds`, or every kind the model has. */
export function traceKinds(cfg: Transformer['cfg'], kinds?: readonly TraceKind[]): TraceKind[] {
  return kinds ? [...kinds] : TRACE_KINDS.filter((k) => k !== 'mlp_out' || !cfg.attnOnly);
}

/** A map from its restored values ([layer][position]) and the clean and corrupted measures. */
function traceMap(kind: TraceKind, restored: number[][], clean: number, corrupted: number): TraceMap {
  const span = clean - corrupted;
  let peak = { layer: 0, position: 0, value: -Infinity };
  restored.forEach((row, l) => row.forEach((v, pos) => v > peak.value && (peak = { layer: l, position: pos, value: v })));
  return {
    kind,
    rows: restored.map((_, l) => `L${l}`),
    cols: (restored[0] ?? []).map((_, i) => String(i)),
    restored,
    indirect: restored.map((row) => row.map((v) => v - corrupted)),
    recovery: restored.map((row) => row.map((v) => (span === 0 ? NaN : (v - corrupted) / span))),
    peak,
  };
}

/**
 * The trace of the shares (options.share) of one trace: each restoration's value from the share
 * that computed it; the clean and corrupted runs are every share's own (the same).
 */
export function mergeTraceShares(shares: readonly CausalTraceResult[]): CausalTraceResult {
  const first = shares[0];
  const maps = first.maps.map((m, mi) => {
    const restored = m.restored.map((row, l) => row.map((_, pos) => shares.map((s) => s.maps[mi].restored[l][pos]).find((v) => !Number.isNaN(v)) ?? NaN));
    return traceMap(m.kind, restored, first.clean, first.corrupted);
  });
  return { ...first, maps, forwardPasses: shares.reduce((n, s) => n + s.forwardPasses, 0) };
}

function readPerRow(metric: 'prob' | 'logprob', logits: tf.Tensor, targets: MetricTargets): number[] {
  const v = metricPerExample(metric, logits, targets);
  const out = Array.from(v.dataSync());
  v.dispose();
  return out;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
