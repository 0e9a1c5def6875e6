import * as tf from '@tensorflow/tfjs';
import { type Transformer, atEveryPosition, trimmedByLastQuery } from '../model/transformer.js';
import type { HookFn, HookName } from '../model/hooks.js';
import type { CircuitGraph } from '../graph/graph.js';
import { type GraphBinding, bindGraph } from '../patching/binding.js';
import { CircuitryError } from '../errors.js';
import { productNT } from '../backend/simd.js';
import { HeadWeights, foldCopies, fusedSupported, headGradientTerms, headInputGradients, headResults, qkvMajor, splitGradientTerms } from './adapter.js';

/**
 * Gradients of the metric at every destination input of the graph, and the contraction
 * score(u->d) = Σ_{b,p,dim} Δ_u · ∂M/∂x_d that turns them into edge scores.
 *
 * Two ways to get ∂M/∂x_d from one forward and one backward pass:
 * - `fused`: the model's ordinary (fused q/k/v) forward; gradients at attn.hook_{q,k,v},
 *   hook_mlp_in and the final residual, and each head's own input gradient rebuilt as
 *   J_LN1^T · W[h] · ∂M/∂q_h (adapter.ts). Head outputs come from attn.hook_z · W_O[h].
 * - `split`: the runtime's split q/k/v path, gradients read directly at
 *   blocks.{l}.hook_{q,k,v}_input (and head outputs at attn.hook_result). Uses hooks only; the
 *   reference the fused path is tested against, and the fallback for other model families.
 */
export type GradientPath = 'fused' | 'split';

/** Destinations sharing one contraction: column j is destination rows[j]; all read sources [0, count). */
interface Block {
  readonly rows: Int32Array;
  readonly count: number;
}

/**
 * ∂M/∂x_d summed over gradient passes (IG steps, stacked copies), held in a form that adds up
 * cheaply; EdgeGradients.contractSum() turns it into the contraction's blocks. Per layer: the heads'
 * terms (fused: headGradientTerms; split: the q/k/v input gradients, [b·p, 3·H·d]) and the MLP
 * input's gradient [b·p·d, 1]; then the final residual's [b·p·d, 1]. Owns its tensors.
 */
export class GradientSum {
  constructor(private parts: tf.Tensor[]) {}

  get tensors(): readonly tf.Tensor[] {
    return this.parts;
  }

  /** this += other (other is disposed). */
  /** The parts, handed over: the sum is empty afterwards (disposing it frees nothing). */
  take(): (tf.Tensor | undefined)[] {
    const parts = this.parts;
    this.parts = [];
    return parts;
  }

  add(other: GradientSum): void {
    const sum = this.parts.map((a, i) => tf.add(a, other.parts[i]));
    tf.dispose([...this.parts, ...other.parts]);
    this.parts = sum;
  }

  dispose(): void {
    tf.dispose(this.parts);
  }
}

/** A gradient pass: the metric, the gradients, and the run's sources if captured. */
export interface GradientPassResult {
  readonly value: number;
  readonly sum: GradientSum;
  /** The run's source outputs [nSrc, b·p·d] (when asked for). */
  readonly sources?: tf.Tensor2D;
}

export interface GradientPassOptions {
  /** Replace the `input` node's output (the residual entering block 0; binding.ts) by this [b, p, d] tensor. */
  readonly input?: tf.Tensor;
  /** Capture the run's source outputs (default false). */
  readonly captureSources?: boolean;
  /**
   * The batch holds this many stacked copies of the same prompts (default 1); the gradients
   * returned are summed over the copies, so each block stays [b·p·d, cols] for one copy.
   */
  readonly copies?: number;
}

/** Every metric reads the last position's logits; the last block runs there only. */
const LAST_QUERY = { lastPositionOnly: true, lastQueryOnly: true } as const;

export class EdgeGradients {
  readonly model: Transformer;
  readonly graph: CircuitGraph;
  readonly path: GradientPath;
  readonly binding: GraphBinding;
  private readonly blocks: Block[] = [];
  private readonly weights?: HeadWeights;

  constructor(model: Transformer, graph: CircuitGraph, path: GradientPath) {
    const { nLayers: L, nHeads: H } = model.cfg;
    const s = graph.shape;
    this.binding = bindGraph(model.cfg, graph);
    if (path === 'fused' && !fusedSupported(model.cfg)) throw new CircuitryError(`gradient path 'fused' does not support this model family; use 'split'`);
    this.model = model;
    this.graph = graph;
    this.path = path;
    for (let l = 0; l < L; l++) {
      const slots = this.binding.layers[l];
      // head gradients come q/k/v-major (column which·H + h); the layer's head rows are h·3 + q|k|v (or h)
      const rows = s.qkv ? Int32Array.from({ length: 3 * H }, (_, c) => slots.heads + 3 * (c % H) + Math.floor(c / H)) : Int32Array.from({ length: H }, (_, h) => slots.heads + h);
      this.blocks.push({ rows, count: slots.srcBefore });
      if (slots.mlp >= 0) this.blocks.push({ rows: Int32Array.of(slots.mlp), count: slots.mlpSources });
    }
    this.blocks.push({ rows: Int32Array.of(this.binding.logitsRow), count: graph.nSrc });
    if (path === 'fused') this.weights = new HeadWeights(model);
  }

  /** Hooks whose activations make up the sources (the fused path reads head outputs as z · W_O). */
  private sourceHooks(): HookName[] {
    const b = this.binding;
    if (this.path !== 'fused') return b.sourceHooks();
    const names: HookName[] = [...b.inputHooks];
    for (let l = 0; l < this.model.cfg.nLayers; l++) {
      names.push(b.headValues(l));
      if (!this.model.cfg.attnOnly) names.push(b.mlpOutput(l));
    }
    return names;
  }

  /**
   * The passes run the last block at the last query only (ForwardOptions.lastQueryOnly): its
   * trimmed activations and gradients ([b, 1, …]) go back to every position here, zeros before
   * the last. That is exact: every destination input of the last block at an earlier position,
   * and the logits' there, has zero gradient, so those sources' values never count.
   */
  private untrim(ts: Map<HookName, tf.Tensor>, p: number): void {
    for (const [name, t] of ts) {
      if (t.shape[1] === p || !trimmedByLastQuery(name, this.model.cfg)) continue;
      ts.set(name, tf.keep(atEveryPosition(t, p)));
      t.dispose();
    }
  }

  /** Source outputs [nSrc, b·p·d] from captured activations (input, a0.h0 … a0.h{H-1}, m0, …). */
  private sourcesFrom(cache: ReadonlyMap<HookName, tf.Tensor>): tf.Tensor2D {
    return tf.tidy(() => {
      const b = this.binding;
      if (!this.weights) return tf.reshape(b.sourcesFrom(cache), [this.graph.nSrc, -1]) as tf.Tensor2D;
      const get = (n: HookName) => cache.get(n)!;
      const input = b.inputFrom(cache);
      const parts: tf.Tensor[] = [tf.reshape(input, [1, input.size])];
      for (let l = 0; l < this.model.cfg.nLayers; l++) {
        parts.push(headResults(get(b.headValues(l)), this.weights.layers[l]));
        if (!this.model.cfg.attnOnly) parts.push(tf.reshape(get(b.mlpOutput(l)), [1, input.size]));
      }
      return tf.concat(parts, 0) as tf.Tensor2D;
    });
  }

  /** An unpatched forward pass of `tokens`: its source outputs [nSrc, b·p·d] and last-position logits [b, 1, V]. */
  forwardSources(tokens: tf.Tensor2D): { sources: tf.Tensor2D; logits: tf.Tensor3D } {
    const { logits, cache } = this.model.runWithCache(tokens, this.sourceHooks(), LAST_QUERY);
    try {
      this.untrim(cache, tokens.shape[1]);
      return { sources: this.sourcesFrom(cache), logits: logits as tf.Tensor3D };
    } catch (e) {
      logits.dispose();
      throw e;
    } finally {
      cache.forEach((t) => t.dispose());
    }
  }

  /** One forward and one backward pass of `tokens`: ∂M/∂x_d at every destination, added to `acc` when given (then returned as the sum). */
  gradientPass(tokens: tf.Tensor2D, scalar: (logits: tf.Tensor) => tf.Scalar, opts: GradientPassOptions = {}, acc?: GradientSum): GradientPassResult {
    const { nLayers: L, attnOnly } = this.model.cfg;
    const fused = this.path === 'fused';
    const b = this.binding;
    const QKV = ['q', 'k', 'v'] as const;
    // per layer: the heads' q, k and v (fused: projections; split: each head's own inputs)
    const headHooks = (l: number) => QKV.map((w) => (fused ? b.headProjection(l, w) : b.headInput(l, w))) as [HookName, HookName, HookName];
    const projections = (l: number) => QKV.map((w) => b.headProjection(l, w)) as [HookName, HookName, HookName];
    const gradNames: HookName[] = [];
    for (let l = 0; l < L; l++) {
      gradNames.push(...headHooks(l));
      if (!attnOnly) gradNames.push(b.mlpInput(l));
    }
    gradNames.push(b.logitsInput);
    const cache = new Map<HookName, tf.Tensor>();
    const capture: HookFn = (act, name) => {
      cache.set(name, tf.keep(act.clone()));
    };
    const hooks = new Map<HookName, HookFn>();
    // LN1's Jacobian needs each layer's residual input and the heads' q, k and v
    const withLn = fused && this.weights!.layers[0]?.ln !== undefined;
    if (withLn) {
      for (let l = 0; l < L; l++) for (const h of [b.residPre(l), ...projections(l)]) hooks.set(h, capture);
    }
    if (opts.captureSources) for (const n of this.sourceHooks()) hooks.set(n, capture);
    const input = opts.input;
    if (input && opts.captureSources) throw new Error('gradientPass: a replaced input and captured sources do not go together');
    if ((opts.copies ?? 1) > 1 && opts.captureSources) throw new Error('gradientPass: stacked copies and captured sources do not go together');
    if (input) {
      const resid0 = b.inputResidual;
      const prev = hooks.get(resid0);
      hooks.set(resid0, (act, name) => {
        prev?.(input, name);
        return input;
      });
    }
    let result: { value: number; grads: Map<HookName, tf.Tensor> };
    try {
      result = this.model.gradients(tokens, gradNames, scalar, { hooks, ...LAST_QUERY });
    } catch (e) {
      cache.forEach((t) => t.dispose());
      throw e;
    }
    const parts: tf.Tensor[] = [];
    const copies = opts.copies ?? 1;
    try {
      this.untrim(result.grads, tokens.shape[1]);
      this.untrim(cache, tokens.shape[1]);
      const three = (names: readonly [HookName, HookName, HookName], from: ReadonlyMap<HookName, tf.Tensor>) => [from.get(names[0])!, from.get(names[1])!, from.get(names[2])!] as const;
      const column = (n: HookName) => tf.tidy(() => foldCopies(tf.reshape(result.grads.get(n)!, [-1, 1]), copies));
      for (let l = 0; l < L; l++) {
        if (fused) {
          const w = this.weights!;
          const terms = headGradientTerms(three(projections(l), result.grads), withLn ? three(projections(l), cache) : undefined, cache.get(b.residPre(l)), w.layers[l], w.lnEps, copies);
          parts.push(terms.g, ...(terms.xTerm ? [terms.xTerm] : []));
        } else parts.push(splitGradientTerms(...three(headHooks(l), result.grads), copies));
        if (!attnOnly) parts.push(column(b.mlpInput(l)));
      }
      parts.push(column(b.logitsInput));
      const sources = opts.captureSources ? this.sourcesFrom(cache) : undefined;
      let sum = new GradientSum(parts);
      if (acc) {
        acc.add(sum);
        sum = acc;
      }
      return { value: result.value, sum, ...(sources ? { sources } : {}) };
    } catch (e) {
      tf.dispose(parts);
      throw e;
    } finally {
      result.grads.forEach((t) => t.dispose());
      cache.forEach((t) => t.dispose());
    }
  }

  /**
   * The contraction's blocks from a sum, one at a time in block order (each caller-owned): ∂M/∂x
   * for each destination of the block, one row each [cols, b·p·d]. The sum's parts are freed as
   * they are read (the sum is spent), so a layer's [3H, b·p, d] terms go as its block comes.
   */
  private *blocksOf(sum: GradientSum): Generator<tf.Tensor2D> {
    const { nLayers: L, nHeads: H, attnOnly } = this.model.cfg;
    const { qkv } = this.graph.shape;
    const parts = sum.take();
    let i = 0;
    const next = () => {
      const t = parts[i];
      parts[i++] = undefined;
      return t!;
    };
    // [1, b·p·d], the part itself freed (a reshape shares its data)
    const row = (t: tf.Tensor) => {
      const r = tf.reshape(t, [1, -1]) as tf.Tensor2D;
      t.dispose();
      return r;
    };
    try {
      for (let l = 0; l < L; l++) {
        const w = this.weights?.layers[l];
        const layerParts = w ? [next(), ...(w.ln ? [next()] : [])] : [next()];
        yield tf.tidy(() => {
          let heads: tf.Tensor3D; // [3H, b·p, d], q/k/v-major
          if (w) heads = headInputGradients({ g: layerParts[0] as tf.Tensor2D, ...(w.ln ? { xTerm: layerParts[1] as tf.Tensor3D } : {}) }, w);
          else heads = qkvMajor(layerParts[0] as tf.Tensor2D, 3 * H);
          tf.dispose(layerParts);
          const [rows, bp, d] = heads.shape;
          return (qkv ? tf.reshape(heads, [rows, bp * d]) : tf.sum(tf.reshape(heads, [3, rows / 3, bp * d]), 0)) as tf.Tensor2D;
        });
        if (!attnOnly) yield row(next());
      }
      yield row(next());
    } finally {
      tf.dispose(parts.filter((t): t is tf.Tensor => t !== undefined));
    }
  }

  /**
   * out[d·nSrc + u] += weight · Σ delta[u] · grad_d for every edge u->d, with grad_d from a sum of
   * gradient passes (spent here: its tensors are freed). A head block multiplies the sources
   * before its layer (a prefix of the rows), [count, b·p·d] · [cols, b·p·d]ᵀ (the SIMD loops'
   * productNT on wasm), as soon as it is made; the one-row blocks (MLPs, logits) go together in
   * one product with all sources at the end (the rows that are not edges are dropped), which is
   * cheaper than one thin product each.
   */
  contractSum(delta: tf.Tensor2D, sum: GradientSum, out: Float32Array, weight: number): void {
    const nSrc = this.graph.nSrc;
    const single: { block: Block; grad: tf.Tensor2D }[] = [];
    try {
      let b = 0;
      for (const grad of this.blocksOf(sum)) {
        const blk = this.blocks[b++];
        const cols = blk.rows.length;
        if (cols === 1) {
          single.push({ block: blk, grad });
          continue;
        }
        let v: Float32Array;
        try {
          v = productNT(delta, blk.count, grad);
        } finally {
          grad.dispose();
        }
        for (let j = 0; j < cols; j++) {
          const base = blk.rows[j] * nSrc;
          for (let s = 0; s < blk.count; s++) out[base + s] += weight * v[s * cols + j];
        }
      }
      if (single.length === 0) return;
      const rows = single.length === 1 ? single[0].grad : (tf.concat(single.map((x) => x.grad), 0) as tf.Tensor2D);
      let v: Float32Array;
      try {
        v = productNT(delta, nSrc, rows);
      } finally {
        if (rows !== single[0].grad) rows.dispose();
      }
      single.forEach(({ block }, col) => {
        const base = block.rows[0] * nSrc;
        for (let s = 0; s < block.count; s++) out[base + s] += weight * v[s * single.length + col];
      });
    } finally {
      tf.dispose(single.map((x) => x.grad));
    }
  }

  dispose(): void {
    this.weights?.dispose();
  }
}
