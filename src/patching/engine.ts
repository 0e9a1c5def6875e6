import * as tf from '@tensorflow/tfjs';
import { type HeadInputs, type Transformer, type VocabularySubset, atEveryPosition } from '../model/transformer.js';
import type { HookFn, HookName } from '../model/hooks.js';
import { bmm } from '../model/ops.js';
import type { CircuitGraph } from '../graph/graph.js';
import { RowBuffer, simdActive } from '../backend/simd.js';
import { bufferedMaskedForward } from './buffered.js';
import { patchedEntries, sparseMaskedForward } from './sparse.js';
import { type GraphBinding, type LayerSlots, bindGraph } from './binding.js';
import { addDelta, stackCopies } from './stacked.js';

/** Host masks patching at most this many distinct sources run the sparse pass. */
const SPARSE_MAX_SOURCES = 24;

/** K dense host masks as one [K, nDst, nSrc] tensor. */
export function hostMaskTensor(graph: CircuitGraph, masks: readonly Float32Array[]): tf.Tensor3D {
  const size = graph.denseSize;
  const flat = new Float32Array(masks.length * size);
  masks.forEach((m, k) => {
    if (m.length !== size) throw new Error(`mask of length ${m.length}, expected ${size}`);
    flat.set(m, k * size);
  });
  return tf.tensor3d(flat, [masks.length, graph.nDst, graph.nSrc]);
}

/**
 * The masked edge forward (DESIGN.md, "Edge semantics"). Every destination d reads
 *   x_d = resid(current) + Σ_u (1 − m_ud) · (patch_u − current_u)
 * where current_u is source u's output in this very run and patch_u its output in the run we
 * patch from. m = 1 keeps an edge, m = 0 patches it; masks are tensors, so the metric can be
 * differentiated with respect to them (EAP is that gradient at m = 1).
 *
 * K masks are evaluated at once by stacking K copies of the batch: masks [K, nDst, nSrc] and a
 * run of B prompts give logits [K·B, p, V], copy k using mask k.
 */

/** Source outputs and residual streams of one unpatched run, reused by every masked forward. */
export class RunCache {
  constructor(
    readonly tokens: tf.Tensor2D, // [B, p]
    readonly sources: tf.Tensor, // [nSrc, B, p, d]
    readonly residPre: readonly tf.Tensor[], // per layer [B, p, d]
    readonly logits: tf.Tensor, // [B, 1, V] (the last position) or [B, p, V]
  ) {}

  private readonly memos = new Map<string, tf.Tensor>();

  get batch(): number {
    return this.tokens.shape[0];
  }

  /**
   * A tensor derived from this run, made once per key and kept until the run is disposed (the
   * buffered pass's sum of the patch's differences below a start layer: the same for every pass
   * from that layer). Keep it small: it lives as long as the run.
   */
  memo(key: string, make: () => tf.Tensor): tf.Tensor {
    let t = this.memos.get(key);
    if (!t) {
      t = tf.keep(make());
      this.memos.set(key, t);
    }
    return t;
  }

  dispose(): void {
    tf.dispose([this.tokens, this.sources, this.logits, ...this.residPre, ...this.memos.values()]);
    this.memos.clear();
  }
}

export interface MaskedForwardArgs {
  readonly run: RunCache;
  /** What a patched edge carries: [nSrc, B, p, d] (another run's sources, zeros, a mean). */
  readonly patch: tf.Tensor;
  /**
   * [K, nDst, nSrc] (or [nDst, nSrc] for K = 1); 1 keeps the current run's output. Host masks
   * (K dense arrays) let the engine run the sparse pass when they patch few sources.
   */
  readonly masks: tf.Tensor | readonly Float32Array[];
  /**
   * Skip the layers below this one, starting from the cached residual stream. Valid only when
   * every mask entry of destinations below this layer is 1 (then those layers run unpatched).
   */
  readonly startAtLayer?: number;
  /** Logits at every position ([K·B, p, V]); by default only the last, which metrics read ([K·B, 1, V]). */
  readonly allPositions?: boolean;
  /** Logits of these tokens only ([…, n] in their order): for a metric that reads no others. */
  readonly vocabulary?: VocabularySubset;
  /**
   * Receives what a one-mask pass computes (cacheMaskedRun): each source block's output as it is
   * produced ([n, B, p, d], in source order) and each layer's residual stream before its block.
   * The values live inside the pass's scopes: keep what you hold on to.
   */
  readonly observe?: PassObserver;
}

export interface PassObserver {
  source(value: tf.Tensor): void;
  resid(layer: number, value: tf.Tensor): void;
}

export class PatchingEngine {
  readonly model: Transformer;
  readonly graph: CircuitGraph;
  /** Graph names → hooks (binding.ts). */
  readonly binding: GraphBinding;
  private readonly rows: readonly LayerSlots[];
  private readonly logitsRow: number;
  private readonly patchBlocks = new Map<number, { patch: tf.Tensor; blocks: Map<number, tf.Tensor> }>();

  constructor(model: Transformer, graph: CircuitGraph) {
    this.model = model;
    this.graph = graph;
    this.binding = bindGraph(model.cfg, graph);
    this.rows = this.binding.layers;
    this.logitsRow = this.binding.logitsRow;
  }

  /**
   * Runs `tokens` unpatched and caches what masked forwards of that run need; the logits at the
   * last position only ([B, 1, V]) unless `allPositions`.
   */
  cacheRun(tokens: tf.Tensor2D, opts: { allPositions?: boolean } = {}): RunCache {
    // a RowBuffer is not differentiable: under a gradient tape, the tensors
    if (simdActive() && !tf.engine().isTapeOn()) return this.cacheRunInPlace(tokens, opts);
    const b = this.binding;
    const L = this.model.cfg.nLayers;
    const residNames = Array.from({ length: L }, (_, l) => b.residPre(l));
    const { logits, cache } = this.model.runWithCache(tokens, [...b.sourceHooks(), ...residNames], { lastPositionOnly: !opts.allPositions });
    const sources = tf.tidy(() => b.sourcesFrom(cache));
    const residPre = residNames.map((n) => cache.get(n)!);
    const keepNames = new Set<HookName>(residNames);
    for (const [name, t] of cache) if (!keepNames.has(name)) t.dispose();
    return new RunCache(tf.keep(tokens.clone()), sources, residPre, logits);
  }

  /**
   * cacheRun on the SIMD loops: each source's output is copied into its row of one buffer as the
   * pass produces it, so the pass keeps no copy of every activation until a final concatenation
   * (on GPT-2 small the cache's peak was three times its size; wasm memory never shrinks).
   */
  private cacheRunInPlace(tokens: tf.Tensor2D, opts: { allPositions?: boolean }): RunCache {
    const b = this.binding;
    const { nLayers: L, nHeads: H, dModel: d } = this.model.cfg;
    const [B, p] = tokens.shape;
    const bpd = B * p * d;
    const nSrc = this.graph.nSrc;
    const buffer = new RowBuffer(1, nSrc, bpd);
    const residPre: tf.Tensor[] = [];
    try {
      const append = (x: tf.Tensor, at: number, n: number) => {
        if (buffer.length !== at) throw new Error(`cacheRun: source ${at} arrived after ${buffer.length} sources`);
        buffer.append(x, 0, n);
      };
      const hooks = new Map<HookName, HookFn>();
      b.onInput(hooks, (x) => append(tf.reshape(x, [1, bpd]), 0, 1));
      for (let l = 0; l < L; l++) {
        const r = this.rows[l];
        hooks.set(b.residPre(l), (x) => void (residPre[l] = tf.keep(x.clone())));
        // [B, p, H, d] → [H, B·p·d]
        hooks.set(b.headOutput(l), (x) => tf.tidy(() => append(tf.reshape(tf.transpose(x, [2, 0, 1, 3]), [H, bpd]), r.srcBefore, H)));
        if (this.graph.shape.hasMlp) hooks.set(b.mlpOutput(l), (x) => append(tf.reshape(x, [1, bpd]), r.srcBefore + H, 1));
      }
      const logits = this.model.forward(tokens, { hooks, lastPositionOnly: !opts.allPositions });
      if (buffer.length !== nSrc || residPre.filter(Boolean).length !== L) {
        logits.dispose();
        throw new Error(`cacheRun: ${buffer.length} of ${nSrc} sources and ${residPre.filter(Boolean).length} of ${L} residual streams were produced`);
      }
      return new RunCache(tf.keep(tokens.clone()), tf.keep(tf.reshape(buffer.tensor, [nSrc, B, p, d])), residPre, logits);
    } catch (e) {
      tf.dispose(residPre.filter(Boolean));
      throw e;
    } finally {
      buffer.dispose();
    }
  }

  /**
   * The run of `run`'s prompts under one host mask, cached as `cacheRun` caches an unpatched run:
   * its sources and residual streams are the patched run's own. A masked forward that starts at
   * layer l from this cache equals the full masked forward of any mask that agrees with `mask`
   * on every destination below l (ACDC's decisions: each changes its own layer and above).
   */
  cacheMaskedRun(run: RunCache, patch: tf.Tensor, mask: Float32Array): RunCache {
    const sources: tf.Tensor[] = [];
    const residPre: tf.Tensor[] = [];
    try {
      const logits = tf.tidy(() =>
        this.maskedForward({
          run,
          patch,
          masks: [mask],
          observe: { source: (v) => void sources.push(tf.keep(v.clone())), resid: (l, v) => void (residPre[l] = tf.keep(v.clone())) },
        }),
      );
      const all = tf.concat(sources, 0);
      if (all.shape[0] !== this.graph.nSrc) throw new Error(`cacheMaskedRun: ${all.shape[0]} sources observed, expected ${this.graph.nSrc}`);
      return new RunCache(tf.keep(run.tokens.clone()), all, residPre, logits);
    } finally {
      tf.dispose(sources);
    }
  }

  /** The masked forward pass: logits [K·B, 1 | p, V]. Call inside tf.tidy or dispose the result. */
  maskedForward(args: MaskedForwardArgs): tf.Tensor {
    const { run, patch } = args;
    if (!(args.masks instanceof tf.Tensor)) {
      if (args.observe) return this.maskedForward({ ...args, masks: hostMaskTensor(this.graph, args.masks) });
      const host = args.masks;
      const entries = patchedEntries(this.graph, host, SPARSE_MAX_SOURCES);
      // heads patched inside a post-attention norm are not a sum of source terms: the dense pass
      if (entries && !entries.some((e) => this.binding.insideNorm(e.src))) {
        const { nLayers: L, nHeads: H, dModel: d } = this.model.cfg;
        return sparseMaskedForward({
          binding: this.binding,
          tokens: run.tokens,
          sources: run.sources,
          residPre: run.residPre,
          patch,
          entries,
          K: host.length,
          start: args.startAtLayer ?? 0,
          dims: { L, H, d },
          forward: (tokens, hooks, startAtLayer, residual) => this.model.forward(tokens, { hooks, startAtLayer, residual, lastPositionOnly: !args.allPositions, lastQueryOnly: !args.allPositions, vocabulary: args.vocabulary }),
          project: (l, which, heads, x) => this.model.headInputProjection(l, which, heads, x),
        });
      }
      return this.maskedForward({ ...args, masks: hostMaskTensor(this.graph, host) });
    }
    const masks = args.masks.rank === 2 ? tf.expandDims(args.masks, 0) : args.masks;
    const binding = this.binding;
    // without a gradient tape, on wasm: the same pass on a RowBuffer (buffered.ts); autodiff needs
    // tensors, and heads patched inside a post-attention norm need the general pass below
    if (simdActive() && !tf.engine().isTapeOn() && !binding.facts.headsInsideNorm) {
      return bufferedMaskedForward({
        model: this.model,
        binding,
        tokens: run.tokens,
        sources: run.sources,
        residPre: run.residPre,
        patch,
        masks: masks as tf.Tensor3D,
        start: args.startAtLayer ?? 0,
        allPositions: args.allPositions === true,
        vocabulary: args.vocabulary,
        memo: (key, make) => run.memo(`${key} of patch ${patch.id}`, make),
        ...(args.observe ? { observe: args.observe } : {}),
      });
    }
    const K = masks.shape[0];
    const [B, p] = run.tokens.shape;
    const { dModel: d, nHeads: H, nLayers: L } = this.model.cfg;
    const bpd = B * p * d;
    const start = args.startAtLayer ?? 0;
    const coefT = tf.transpose(tf.sub(1, masks), [0, 2, 1]); // (1 − m), sources first: [K, nSrc, nDst]
    // patch_u − current_u of the sources produced so far, with sources along the last axis:
    // committed ones in one tensor [K, B·p·d, n] (grown once per layer: the concat copies it all),
    // the current layer's in `pending`. Only the latest tensors are kept (the runtime frees each
    // block's tensors); the tape keeps what backprop needs. Heads patched inside a post-attention
    // norm enter as zero columns here, and through `insideNorm` below.
    let diffs: tf.Tensor | undefined;
    let committed = 0;
    const pending: tf.Tensor[] = [];
    let produced = 0;
    /** Appends sources [at, at + n): their patch − current, [K, B·p·d, n]. */
    const addDifference = (diff: tf.Tensor, at: number) => {
      if (at !== produced) throw new Error(`masked forward: source ${at} arrived after ${produced} sources (the forward pass must run heads before their MLP)`);
      pending.push(tf.keep(diff));
      produced += diff.shape[2]!;
    };
    const addSources = (current: tf.Tensor /* [K, B·p·d, n] */, at: number) => addDifference(tf.sub(this.patchBlock(patch, at, current.shape[2]!, bpd), current), at);
    const commit = () => {
      if (pending.length === 0) return;
      const next = tf.keep(tf.concat(diffs ? [diffs, ...pending] : pending, 2));
      tf.dispose([diffs!, ...pending].filter(Boolean));
      pending.length = 0;
      diffs = next;
      committed = produced;
    };
    // Σ_u (1 − m_ud)(patch_u − current_u) for runs of destination rows ([first row, count]),
    // → [K, B·p·d, Σ count]. The product puts the small coefficient matrix on the right: that is
    // the operand XNNPACK packs, so the large difference tensor streams through unpacked.
    type Runs = readonly (readonly [number, number])[];
    const coefFor = (runs: Runs, from: number, n: number) => {
      const parts = runs.map(([row, R]) => tf.slice(coefT, [0, from, row], [K, n, R]));
      return parts.length === 1 ? parts[0] : tf.concat(parts, 2);
    };
    // Layers whose heads sit inside a post-attention norm: per layer, the heads' patch − current
    // [K, B·p·d, H] and the heads' summed output [K, B·p, d]. A destination reading those heads
    // gets norm(sum + Σ_h (1 − m_hd)(patch_h − current_h)) − norm(sum): one norm per destination.
    const normed = new Map<number, { diff: tf.Tensor; sum: tf.Tensor }>();
    /** `out` plus the inside-norm terms of the layers whose heads lie in [from, count). */
    const insideNorm = (runs: Runs, from: number, count: number, out: tf.Tensor) => {
      let result = out;
      for (const [l, st] of normed) {
        const first = this.rows[l].srcBefore;
        if (first < from || first + H > count) continue;
        const coef = coefFor(runs, first, H); // [K, H, R]
        const R = coef.shape[2]!;
        const mixed = tf.transpose(tf.reshape(bmm(st.diff, coef), [K, B * p, d, R]), [0, 3, 1, 2]); // [K, R, B·p, d]
        const sum = tf.reshape(st.sum, [K, 1, B * p, d]);
        const change = tf.sub(this.model.attnPostNorm(l, tf.add(sum, mixed)), this.model.attnPostNorm(l, sum));
        result = tf.add(result, tf.reshape(tf.transpose(change, [0, 2, 3, 1]), [K, bpd, R]));
      }
      return result;
    };
    /** The sum over pending sources below `count`, added to `early` (the committed sources' part) when given. */
    const pendingDelta = (runs: Runs, count: number, early?: tf.Tensor) => {
      let out = early;
      let at = committed;
      for (const block of pending) {
        const n = block.shape[2]!;
        if (at + n > count) {
          if (at < count) throw new Error(`masked forward: a destination reads part of a block of sources (${at} to ${at + n}, up to ${count})`);
          break;
        }
        const part = bmm(block, coefFor(runs, at, n));
        out = out ? tf.add(out, part) : part;
        at += n;
      }
      return out!;
    };
    /** Σ over sources [0, count) for runs of destination rows. */
    const delta = (runs: Runs, count: number) => {
      if (count > produced) throw new Error(`masked forward: destination row ${runs[0][0]} reads ${count} sources but ${produced} were produced`);
      if (!diffs) commit();
      if (committed > count) throw new Error(`masked forward: destination row ${runs[0][0]} reads ${count} sources but ${committed} were committed`);
      return insideNorm(runs, 0, count, pendingDelta(runs, count, bmm(diffs!, coefFor(runs, 0, committed))));
    };
    // The MLP's and the logits' sums over the sources before a layer's heads ride along with the
    // heads' product (one more column each, instead of another pass over all the differences);
    // their hooks add the sources produced since (none for a parallel block's MLP).
    const early = new Map<number, { delta: tf.Tensor; upTo: number }>();
    const lateDelta = (row: number, count: number) => {
      if (count > produced) throw new Error(`masked forward: destination row ${row} reads ${count} sources but ${produced} were produced`);
      const e = early.get(row);
      if (!e) return delta([[row, 1]], count);
      // the rider covers [0, upTo) (inside-norm heads included); add the sources from upTo on
      return insideNorm([[row, 1]], e.upTo, count, pendingDelta([[row, 1]], count, e.delta));
    };
    const qkv = this.graph.shape.qkv;
    const hooks = new Map<HookName, HookFn>();
    const observe = args.observe;
    if (observe && (K !== 1 || start !== 0)) throw new Error('masked forward: observing needs one mask and a pass from layer 0');
    if (start === 0) {
      binding.onInput(hooks, (x) => {
        observe?.source(tf.reshape(x, [1, B, p, d]));
        addSources(tf.reshape(x, [K, bpd, 1]), 0);
      });
    } else {
      const before = this.rows[start].srcBefore;
      // the layers below start run unpatched: their sources are the run's own
      const prefix = tf.reshape(tf.slice(run.sources, [0, 0, 0, 0], [before, B, p, d]), [before, bpd]);
      const diff = tf.reshape(tf.transpose(tf.sub(tf.reshape(tf.slice(patch, [0, 0, 0, 0], [before, B, p, d]), [before, bpd]), prefix)), [1, bpd, before]);
      // K copies by broadcasting (Tile is slow on wasm)
      let all = K === 1 ? diff : tf.add(diff, tf.zeros([K, 1, 1]));
      if (binding.facts.headsInsideNorm) {
        // the unpatched layers' heads, inside their norms: their columns go to zero
        const keep = new Float32Array(before).fill(1);
        for (let l = 0; l < start; l++) {
          const first = this.rows[l].srcBefore;
          keep.fill(0, first, first + H);
          const heads = tf.reshape(tf.slice(run.sources, [first, 0, 0, 0], [H, B, p, d]), [H, bpd]);
          const patched = tf.reshape(tf.slice(patch, [first, 0, 0, 0], [H, B, p, d]), [H, bpd]);
          const headDiff = tf.reshape(tf.transpose(tf.sub(patched, heads)), [1, bpd, H]);
          const sum = tf.reshape(tf.sum(heads, 0), [1, B * p, d]);
          normed.set(l, { diff: tf.keep(K === 1 ? headDiff : tf.add(headDiff, tf.zeros([K, 1, 1]))), sum: tf.keep(K === 1 ? sum : tf.add(sum, tf.zeros([K, 1, 1]))) });
        }
        all = tf.mul(all, tf.tensor1d(keep));
      }
      diffs = tf.keep(all);
      produced = committed = before;
    }
    // With last-position logits the last block runs at the last query only (lastQueryOnly): its
    // sources come back to every position as zeros before the last, which only that block's MLP
    // and the logits read, at the last position (exact); their deltas are taken there.
    const trim = !args.allPositions;
    const at = (a: tf.Tensor, dl: tf.Tensor) => addDelta(a, tf.reshape(dl, [K * B, p, d]));
    for (let l = start; l < L; l++) {
      const r = this.rows[l];
      hooks.set(binding.headOutput(l), (a) => {
        observe?.source(tf.transpose(atEveryPosition(a, p), [2, 0, 1, 3]));
        const current = tf.reshape(tf.transpose(atEveryPosition(a, p), [0, 1, 3, 2]), [K, bpd, H]);
        if (!binding.facts.headsInsideNorm) return void addSources(current, r.srcBefore);
        const sum = tf.reshape(tf.sum(atEveryPosition(a, p), 2), [K, B * p, d]);
        normed.set(l, { diff: tf.keep(tf.sub(this.patchBlock(patch, r.srcBefore, H, bpd), current)), sum: tf.keep(sum) });
        addDifference(tf.zeros([K, bpd, H]), r.srcBefore); // their terms come through insideNorm
      });
      if (r.mlp >= 0) {
        hooks.set(binding.mlpInput(l), (a) => at(a, lateDelta(r.mlp, r.mlpSources)));
        hooks.set(binding.mlpOutput(l), (a) => {
          observe?.source(tf.reshape(atEveryPosition(a, p), [1, B, p, d]));
          addSources(tf.reshape(atEveryPosition(a, p), [K, bpd, 1]), r.srcBefore + H);
        });
      }
    }
    hooks.set(binding.logitsInput, (a) => at(a, lateDelta(this.logitsRow, this.graph.nSrc)));
    // every head's own residual inputs, [K·B·p, R, d] (HeadInputs): one product for the layer's
    // head rows (h·3 + q|k|v, or h without q/k/v), whose columns come out head-major as the model
    // reads them, then the riders' columns
    const G = qkv ? 3 : 1;
    const headInputs = (l: number, resid: tf.Tensor): HeadInputs | undefined => {
      if (l < start) return undefined;
      observe?.resid(l, resid);
      const r = this.rows[l];
      commit(); // everything before this layer: one product
      const riders = [r.mlp, l === L - 1 ? this.logitsRow : -1].filter((row) => row >= 0);
      const R = G * H + riders.length;
      const all = delta([[r.heads, G * H], ...riders.map((row) => [row, 1] as const)], r.srcBefore); // [K, B·p·d, R]
      const n = K * B * p;
      const rows = tf.transpose(tf.reshape(all, [n, d, R]), [0, 2, 1]); // [n, R, d]
      riders.forEach((row, i) => early.set(row, { delta: tf.reshape(tf.slice(rows, [0, G * H + i, 0], [n, 1, d]), [K, bpd, 1]), upTo: r.srcBefore }));
      // the residual goes onto the riders' rows too, which the model ignores: no slice of the heads'
      return { rows: tf.add(rows, tf.reshape(resid, [n, 1, d])), perHead: G };
    };
    const tokens = K === 1 ? run.tokens : tf.tile(run.tokens, [K, 1]);
    const residual = start > 0 ? stackCopies(run.residPre[start], K) : undefined;
    try {
      return this.model.forward(tokens as tf.Tensor2D, {
        hooks,
        headInputs,
        useAttnResult: true,
        startAtLayer: start,
        residual,
        lastPositionOnly: trim,
        lastQueryOnly: trim,
        vocabulary: args.vocabulary,
      });
    } finally {
      tf.dispose([diffs!, ...pending].filter(Boolean));
      normed.forEach((st) => tf.dispose([st.diff, st.sum]));
    }
  }

  /**
   * Sources [at, at + n) of `patch` with sources last, [1, B·p·d, n]: the layout the delta
   * products read. Cached per patch tensor (a Patcher reuses one patch for every evaluation);
   * entries go when their patch is disposed. The patch is a constant here: no gradient reaches it.
   */
  private patchBlock(patch: tf.Tensor, at: number, n: number, bpd: number): tf.Tensor {
    for (const [id, entry] of this.patchBlocks) {
      if (entry.patch.isDisposed) {
        entry.blocks.forEach((t) => t.dispose());
        this.patchBlocks.delete(id);
      }
    }
    let entry = this.patchBlocks.get(patch.id);
    if (!entry) this.patchBlocks.set(patch.id, (entry = { patch, blocks: new Map() }));
    let block = entry.blocks.get(at);
    if (!block || block.shape[2] !== n) {
      block?.dispose();
      const rows = tf.reshape(tf.slice(patch, [at, 0, 0, 0], [n, ...patch.shape.slice(1)]), [n, bpd]);
      block = tf.keep(tf.reshape(tf.transpose(rows), [1, bpd, n]));
      entry.blocks.set(at, block);
    }
    return block;
  }

  /**
   * The lowest layer with a destination whose mask row is not all ones, or differs from
   * `reference`'s row when given (L when none).
   */
  firstPatchedLayer(mask: Float32Array, reference?: Float32Array): number {
    const g = this.graph;
    for (let di = 0; di < g.nDst; di++) {
      const dst = g.destinations[di];
      const base = di * g.nSrc;
      for (let si = 0; si < dst.srcCount; si++) if (mask[base + si] !== (reference ? reference[base + si] : 1)) return Math.min(dst.layer, this.model.cfg.nLayers);
    }
    return this.model.cfg.nLayers;
  }

  dispose(): void {
    for (const entry of this.patchBlocks.values()) entry.blocks.forEach((t) => t.dispose());
    this.patchBlocks.clear();
  }
}
