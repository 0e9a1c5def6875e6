import * as tf from '@tensorflow/tfjs';
import { type HeadInputs, type Transformer, type VocabularySubset, atEveryPosition } from '../model/transformer.js';
import type { HookFn, HookName } from '../model/hooks.js';
import { RowBuffer, addRows, mixRows } from '../backend/simd.js';
import type { GraphBinding } from './binding.js';
import { addDelta, stackCopies } from './stacked.js';
import type { PassObserver } from './engine.js';

export interface BufferedPassArgs {
  readonly model: Transformer;
  /** The graph's hooks and rows; heads outside any post-attention norm (the engine checks). */
  readonly binding: GraphBinding;
  readonly tokens: tf.Tensor2D; // [B, p]
  readonly sources: tf.Tensor; // the run's [nSrc, B, p, d]
  readonly residPre: readonly tf.Tensor[];
  readonly patch: tf.Tensor; // [nSrc, B, p, d]
  readonly masks: tf.Tensor3D; // [K, nDst, nSrc]
  readonly start: number;
  readonly allPositions: boolean;
  readonly vocabulary?: VocabularySubset;
  /** Sees each source's output and each layer's residual input (one mask, from layer 0: a base run). */
  readonly observe?: PassObserver;
  /** Keeps a tensor made from the run and patch across passes (RunCache.memo); without it, made per pass. */
  readonly memo?: (key: string, make: () => tf.Tensor) => tf.Tensor;
}

/**
 * How a layer's receivers sum their sources: 'auto' takes the complement (below) where it costs
 * less; tests force either side.
 */
export type ComplementMix = 'auto' | 'always' | 'never';
let complementMix: ComplementMix = 'auto';

/** Sets when the buffered pass sums a layer's inputs as a complement (for tests); returns the previous setting. */
export function setComplementMix(mode: ComplementMix): ComplementMix {
  const before = complementMix;
  complementMix = mode;
  return before;
}

/**
 * The dense masked forward (engine.ts) for passes without a gradient tape, on the wasm backend's
 * SIMD loops: the sources' differences patch_u − current_u go into a RowBuffer, one row each
 * ([K, nSrc, B·p·d], appended as the pass produces them), and each layer's receiver inputs come
 * out of one `mix` of its rows, head-major with the residual added (HeadInputs.headMajor). Same
 * edge semantics and results as the engine's tensor path, which autodiff needs; measured on
 * GPT-2 small's shape, it drops the per-layer concatenation, transpose and residual add.
 *
 * A circuit's mask patches most edges (m = 0) and keeps few (ACDC's prune, a circuit's
 * evaluation). Then a layer's receivers take the complement: Σ_u (1 − m_u) x_u =
 * Σ_u x_u − Σ_{u kept} m_u x_u, a running total of every difference row (one pass over each row)
 * less the few kept sources, instead of every receiver summing every source: the sum that
 * dominated ACDC's passes on GPT-2 small's shape.
 *
 * A pass from layer `start` > 0 reads the sources below it unpatched: their differences are the
 * same for every copy and every pass from that layer. They are not copied into the RowBuffer per
 * copy (which holds the live sources only): their total is memoised on the run, the few rows a
 * complement keeps are taken straight from the run and the patch, and a direct sum reads them
 * from one shared copy made for the pass.
 */
export function bufferedMaskedForward(a: BufferedPassArgs): tf.Tensor {
  const { model, binding, masks, start, observe } = a;
  const graph = binding.graph;
  const rows = binding.layers;
  const K = masks.shape[0];
  const [B, p] = a.tokens.shape;
  const { dModel: d, nHeads: H, nLayers: L } = model.cfg;
  const bpd = B * p * d;
  if (observe && (K !== 1 || start !== 0)) throw new Error('masked forward: observing needs one mask and a pass from layer 0');
  const G = graph.shape.qkv ? 3 : 1;
  const coef = tf.sub(1, masks); // (1 − m): [K, nDst, nSrc]
  /** Coefficient rows for runs of destination rows over sources [s0, s1): [K, Σ count, s1 − s0]. */
  const coefRows = (runs: readonly (readonly [number, number])[], s0: number, s1: number) => {
    const parts = runs.map(([row, n]) => tf.slice(coef, [0, row, s0], [K, n, s1 - s0]));
    return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
  };
  const patch = tf.reshape(a.patch, [graph.nSrc, bpd]);
  const runSources = tf.reshape(a.sources, [graph.nSrc, bpd]);
  // sources below `before` are the prefix (unpatched, shared); the buffer holds the rest
  const before = start > 0 ? rows[start].srcBefore : 0;
  const buffer = new RowBuffer(K, graph.nSrc - before, bpd);
  const produced = () => before + buffer.length;
  let prefix: RowBuffer | undefined; // [1, before, B·p·d], made when a direct sum reads the prefix
  const prefixRows = (): RowBuffer => {
    if (!prefix) {
      prefix = new RowBuffer(1, before, bpd);
      tf.keep(prefix.tensor); // made inside some layer's scope, read by later ones
      prefix.appendDifference(patch, 0, runSources, 0, before);
    }
    return prefix;
  };
  /** The prefix's total Σ_{u < before} (patch_u − source_u), [1, B·p·d]: summed as the buffer would sum it. */
  const prefixTotal = (): tf.Tensor => {
    const make = () => tf.reshape(prefixRows().mix(tf.ones([1, 1, before]), 0, before), [1, bpd]);
    return a.memo ? a.memo(`prefix total below source ${before}`, make) : make();
  };
  /** R uninitialised receiver rows on the heap, [R, K, B·p·d], for mixInto and mixRows to fill. */
  const newRows = (R: number): tf.TensorInfo => (tf.backend() as unknown as { makeOutput(shape: number[], dtype: string): tf.TensorInfo }).makeOutput([R, K, bpd], 'float32');
  /**
   * Rows [r0, r0 + R) of `out` ([·, K, B·p·d]) = base (on every row, when given) + Σ_{s ∈ [s0, s1)}
   * coefOf(s0', s1')[k, r, s − s0'] · x_s, reading the prefix and the buffer as needed.
   */
  const mixInto = (out: tf.TensorInfo, r0: number, coefOf: (s0: number, s1: number) => tf.Tensor, s0: number, s1: number, base?: tf.Tensor) => {
    if (s0 >= before) {
      mixRows(out, r0, coefOf(s0, s1), { tensor: buffer.tensor, firstRow: (k) => k * buffer.capacity + s0 - before }, base);
      return;
    }
    const cut = Math.min(before, s1);
    mixRows(out, r0, coefOf(s0, cut), { tensor: prefixRows().tensor, firstRow: () => s0 }, base);
    if (s1 > cut) addRows(out, r0, buffer.mix(coefOf(cut, s1), 0, s1 - before));
  };
  // the complement's running total Σ_u x_u over rows [0, totalUpTo): [K, B·p·d], kept across blocks
  const hostMasks = complementMix === 'never' ? undefined : masks.dataSync();
  let total: tf.Tensor | undefined;
  let totalUpTo = 0;
  const totalTo = (n: number): tf.Tensor => {
    if (n < before) throw new Error(`masked forward: a total over ${n} sources, below the first ${before} the pass starts after`);
    if (!total && before > 0) {
      total = tf.keep(tf.add(tf.zeros([K, bpd]), prefixTotal()));
      totalUpTo = before;
    }
    if (n > totalUpTo || !total) {
      const part = tf.reshape(buffer.mix(tf.ones([K, 1, n - totalUpTo]), totalUpTo - before, n - before), [K, bpd]);
      const next = tf.keep(total ? tf.add(total, part) : part);
      total?.dispose();
      total = next;
      totalUpTo = n;
    }
    return total;
  };
  /**
   * The receiver inputs of runs of destination rows over sources [0, n), [Σ count, K, B·p·d],
   * with `base` added to the first run's rows. Each run sums its sources directly or, where that
   * reads more rows, as the complement.
   */
  const mixLayer = (runs: readonly (readonly [number, number])[], n: number, base: tf.Tensor): tf.Tensor => {
    const out = newRows(runs.reduce((t, [, count]) => t + count, 0));
    let r0 = 0;
    runs.forEach(([row, count], i) => {
      const kept = hostMasks && n > 0 ? keptSources(row, count, n) : undefined;
      // directly, each receiver reads n rows; as the complement, only the kept ones (and the total, once a layer)
      if (!kept || (complementMix === 'auto' && 3 * kept.length > n)) {
        mixInto(out, r0, (s0, s1) => coefRows([[row, count]], s0, s1), 0, n, i === 0 ? base : undefined);
      } else {
        const coef = new Float32Array(K * count * kept.length);
        for (let k = 0; k < K; k++) {
          for (let r = 0; r < count; r++) {
            const at = (k * graph.nDst + row + r) * graph.nSrc;
            kept.forEach((u, j) => (coef[(k * count + r) * kept.length + j] = -hostMasks![at + u]));
          }
        }
        const T = totalTo(n);
        const c = tf.tensor3d(coef, [K, count, kept.length]);
        const withBase = i === 0 ? tf.add(T, tf.reshape(base, [K, bpd])) : T;
        const flat = tf.reshape(buffer.tensor, [K * buffer.capacity, bpd]);
        // kept prefix rows are the same for every copy: patch − source, taken once
        const keptBefore = kept.filter((u) => u < before);
        const keptLive = kept.slice(keptBefore.length);
        const index = (us: number[]) => tf.tensor1d(us, 'int32');
        const shared = keptBefore.length > 0 ? tf.sub(tf.gather(patch, index(keptBefore)), tf.gather(runSources, index(keptBefore))) : undefined;
        // the kept rows gathered one copy at a time (a transient of |kept| rows, not K times that)
        for (let k = 0; k < K; k++) {
          tf.tidy(() => {
            const own = keptLive.length > 0 ? tf.gather(flat, index(keptLive.map((u) => k * buffer.capacity + u - before))) : undefined;
            const rows = shared && own ? tf.concat([shared, own]) : (shared ?? own ?? tf.zeros([1, bpd]));
            mixRows(out, r0, c, { tensor: rows, firstRow: () => 0 }, withBase, count, [k, k + 1]);
          });
        }
      }
      r0 += count;
    });
    return tf.engine().makeTensorFromTensorInfo(out);
  };
  /** Sources below n that some copy keeps (m ≠ 0) into destination rows [row, row + count), ascending. */
  const keptSources = (row: number, count: number, n: number): number[] => {
    const kept = new Uint8Array(n);
    for (let k = 0; k < K; k++) {
      for (let dst = row; dst < row + count; dst++) {
        const at = (k * graph.nDst + dst) * graph.nSrc;
        for (let u = 0; u < n; u++) if (hostMasks![at + u] !== 0) kept[u] = 1;
      }
    }
    const out: number[] = [];
    kept.forEach((v, u) => v && out.push(u));
    return out;
  };
  const addSources = (current: tf.Tensor /* [K, n, B·p·d] */, at: number) => {
    if (at !== produced()) throw new Error(`masked forward: source ${at} arrived after ${produced()} sources (the forward pass must run heads before their MLP)`);
    buffer.appendDifference(patch, at, current, 0, current.shape[1]!);
  };
  // a rider's (MLP's, logits') sum over the sources before its layer's heads, from the heads' mix
  const early = new Map<number, { delta: tf.Tensor; upTo: number }>();
  /** Σ over sources [0, count) for one destination row, as [K·B, p, d]. */
  const lateDelta = (row: number, count: number) => {
    if (count > produced()) throw new Error(`masked forward: destination row ${row} reads ${count} sources but ${produced()} were produced`);
    const e = early.get(row);
    const from = e?.upTo ?? 0;
    // a parallel block's MLP reads nothing its rider did not already sum
    if (e && from === count) return tf.reshape(e.delta, [K * B, p, d]);
    const out = newRows(1);
    mixInto(out, 0, (s0, s1) => coefRows([[row, 1]], s0, s1), from, count, e?.delta);
    return tf.reshape(tf.engine().makeTensorFromTensorInfo(out), [K * B, p, d]);
  };
  const hooks = new Map<HookName, HookFn>();
  if (start === 0) {
    binding.onInput(hooks, (x) => {
      observe?.source(tf.reshape(x, [1, B, p, d]));
      addSources(tf.reshape(x, [K, 1, bpd]), 0);
    });
  }
  // with last-position logits the last block runs at the last query only; see engine.ts
  const trim = !a.allPositions;
  for (let l = start; l < L; l++) {
    const r = rows[l];
    hooks.set(binding.headOutput(l), (x) => {
      observe?.source(tf.transpose(atEveryPosition(x, p), [2, 0, 1, 3]));
      // [K·B, p, H, d] → [K, H, B·p·d]: moves runs of d
      addSources(tf.reshape(tf.transpose(tf.reshape(atEveryPosition(x, p), [K, B * p, H, d]), [0, 2, 1, 3]), [K, H, bpd]), r.srcBefore);
    });
    if (r.mlp >= 0) {
      hooks.set(binding.mlpInput(l), (x) => addDelta(x, lateDelta(r.mlp, r.mlpSources)));
      hooks.set(binding.mlpOutput(l), (x) => {
        observe?.source(tf.reshape(atEveryPosition(x, p), [1, B, p, d]));
        addSources(tf.reshape(atEveryPosition(x, p), [K, 1, bpd]), r.srcBefore + H);
      });
    }
  }
  hooks.set(binding.logitsInput, (x) => addDelta(x, lateDelta(binding.logitsRow, graph.nSrc)));
  const headInputs = (l: number, resid: tf.Tensor): HeadInputs | undefined => {
    if (l < start) return undefined;
    observe?.resid(l, resid);
    const r = rows[l];
    if (produced() !== r.srcBefore) throw new Error(`masked forward: layer ${l}'s heads read ${r.srcBefore} sources but ${produced()} were produced`);
    const riders = [r.mlp, l === L - 1 ? binding.logitsRow : -1].filter((row) => row >= 0);
    const heads = G * H;
    // [heads + riders, K, B·p·d]; the residual goes onto the heads' rows only
    const runs = [[r.heads, heads] as const, ...riders.map((row) => [row, 1] as const)];
    const mixed = mixLayer(runs, r.srcBefore, resid);
    riders.forEach((row, i) => early.set(row, { delta: tf.reshape(tf.slice(mixed, [heads + i, 0, 0], [1, K, bpd]), [K, bpd]), upTo: r.srcBefore }));
    // the riders' rows come along; the model reads the first H·G
    return { rows: tf.reshape(mixed, [heads + riders.length, K * B * p, d]), perHead: G, headMajor: true };
  };
  const tokens = K === 1 ? a.tokens : tf.tile(a.tokens, [K, 1]);
  const residual = start > 0 ? stackCopies(a.residPre[start], K) : undefined;
  try {
    return model.forward(tokens as tf.Tensor2D, { hooks, headInputs, useAttnResult: true, startAtLayer: start, residual, lastPositionOnly: trim, lastQueryOnly: trim, vocabulary: a.vocabulary });
  } finally {
    buffer.dispose();
    prefix?.dispose();
    total?.dispose();
  }
}
