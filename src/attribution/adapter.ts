import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import type { ModelConfig } from '../model/config.js';
import { bmm } from '../model/ops.js';
import { CircuitryError } from '../errors.js';

/**
 * The few facts of a transformer block that the fused attribution gradient needs beyond hooks: a
 * head's q/k/v input is the block's first norm (LayerNorm, RMSNorm or none) then a per-head
 * projection, and a head's output is z_h · W_O[h]. With them, the gradient at every head's own
 * q/k/v input (what the split path's hook_{q,k,v}_input would give) is rebuilt from the fused
 * path's gradient at attn.hook_{q,k,v} (before any rotation, which follows linearly), which avoids
 * the split forward (a norm and projections of [b, p, H, d] tensors per layer, and their backward).
 * Model-specific knowledge lives here and nowhere else in src/attribution. The weights come from
 * Transformer.foldedHeadWeights (family-neutral: the norm's weight folded in, grouped k/v heads
 * ungrouped); only their small norm terms are kept (on the host, while the model lives).
 */

/** One layer's small per-head norm terms, prepared on the host once per model (see LayerHeadWeights). */
interface HostLayer {
  readonly ln?: { readonly rowSums: Float32Array; readonly offset: Float32Array; readonly centred: boolean }; // [3H, dh] each
}

/** Prepared host terms, one per model (dropped with the model). */
const hostCache = new WeakMap<Transformer, HostLayer[]>();

/** Whether the fused gradient supports this model (else use the split path). */
export function fusedSupported(cfg: ModelConfig): boolean {
  return cfg.normalization === 'LN' || cfg.normalization === 'RMS' || cfg.normalization === 'none';
}

/** (diag(w) · W[which, h])^T stacked, [3H, dh, d], q/k/v-major, from the model's weights (caller-owned). */
function inputTransposes(model: Transformer, l: number): tf.Tensor3D {
  const w = model.foldedHeadWeights(l);
  try {
    return tf.tidy(() => tf.concat([w.q, w.k, w.v].map((t) => tf.transpose(t, [0, 2, 1])), 0) as tf.Tensor3D);
  } finally {
    tf.dispose(Object.values(w));
  }
}

function hostLayers(model: Transformer): HostLayer[] {
  const cached = hostCache.get(model);
  if (cached) return cached;
  if (!fusedSupported(model.cfg)) throw new CircuitryError(`the fused attribution gradient does not support normalization '${model.cfg.normalization}'; use gradient: 'split'`);
  const norm = model.cfg.normalization;
  const layers: HostLayer[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    if (norm === 'none') {
      layers.push({});
      continue;
    }
    const w = model.foldedHeadWeights(l);
    const inputT = inputTransposes(model, l);
    const [rowSums, offset] = tf.tidy(() => [tf.sum(inputT, 2), tf.concat([w.bQ, w.bK, w.bV], 0)]); // [3H, dh] each
    layers.push({ ln: { rowSums: rowSums.dataSync() as Float32Array, offset: offset.dataSync() as Float32Array, centred: norm === 'LN' } });
    tf.dispose([inputT, rowSums, offset, ...Object.values(w)]);
  }
  hostCache.set(model, layers);
  return layers;
}

/**
 * One layer's per-head matrices (tensors owned by the HeadWeights that made them). Head inputs
 * are q/k/v-major (row which·H + h, which ∈ q, k, v), as hook_{q,k,v}_input stacked in that order
 * lays them out.
 */
export interface LayerHeadWeights {
  /**
   * (diag(w) · W[which, h])^T stacked: [3H, dh, d] (w = LN1's weight, 1 without LayerNorm), made
   * on each call (caller-owned): the contraction needs one layer's at a time, so none is held.
   */
  inputT(): tf.Tensor3D;
  /** Rows of inputT (3H) and the model width d. */
  readonly rows: number;
  readonly dModel: number;
  /** W_O[h] stacked: [H, dh, d] (the model's own, its data shared). */
  readonly out: tf.Tensor3D;
  /**
   * With a norm: Σ_i of each inputT row, [3H, 1, dh]; the part of q/k/v that is not (x̂ ⊙ w)·W,
   * i.e. b_LN·W + b_attn, [3H, 1, dh]; and whether the norm centres (LayerNorm) or not (RMSNorm).
   */
  readonly ln?: { readonly rowSums: tf.Tensor3D; readonly offset: tf.Tensor3D; readonly centred: boolean };
}

/** Per-head weights for one attribution run; dispose() frees them. */
export class HeadWeights {
  readonly layers: readonly LayerHeadWeights[];
  readonly lnEps: number;

  constructor(model: Transformer) {
    const host = hostLayers(model);
    const { nHeads: H, dModel: d, dHead: dh } = model.cfg;
    this.lnEps = model.cfg.lnEps;
    this.layers = host.map((hl, l) => {
      const w = model.foldedHeadWeights(l);
      const out = w.o as tf.Tensor3D;
      tf.dispose([w.q, w.k, w.v, w.bQ, w.bK, w.bV]);
      const ln = hl.ln ? { rowSums: tf.tensor3d(hl.ln.rowSums, [3 * H, 1, dh]), offset: tf.tensor3d(hl.ln.offset, [3 * H, 1, dh]), centred: hl.ln.centred } : undefined;
      return { inputT: () => inputTransposes(model, l), rows: 3 * H, dModel: d, out, ...(ln ? { ln } : {}) };
    });
  }

  dispose(): void {
    for (const l of this.layers) tf.dispose([l.out, ...(l.ln ? [l.ln.rowSums, l.ln.offset] : [])]);
  }
}

/**
 * Per-head outputs from attn.hook_z: z [b, p, H, dh] -> [H, b·p·d] (head h's z_h · W_O[h],
 * TransformerLens' hook_result without the bias).
 */
export function headResults(z: tf.Tensor, w: LayerHeadWeights): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, p, H, dh] = z.shape;
    const d = w.out.shape[2];
    // one batched product (the SIMD loops on wasm)
    return tf.reshape(bmm(tf.reshape(tf.transpose(z, [2, 0, 1, 3]), [H, b * p, dh]), w.out), [H, b * p * d]) as tf.Tensor2D;
  });
}

/**
 * Σ over stacked copies: [K·n, ...] -> [n, ...] (a product with ones: wasm's Sum over a leading
 * axis and its slices are slower).
 */
export function foldCopies(t: tf.Tensor, copies: number): tf.Tensor {
  if (copies === 1) return t;
  return tf.tidy(() => tf.reshape(tf.matMul(tf.ones([1, copies]), tf.reshape(t, [copies, -1])), [t.shape[0] / copies, ...t.shape.slice(1)]));
}

/** [K·b, p, H, x] tensors of q, k and v -> [K·b·p, 3·H·x], q/k/v-major along the columns. */
function qkvRows(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor2D {
  const [b, p, H, x] = q.shape;
  return tf.concat([q, k, v].map((t) => tf.reshape(t, [b * p, H * x])), 1) as tf.Tensor2D;
}

/**
 * Gradients at each head's own q, k and v input from the gradients at attn.hook_{q,k,v}, in two
 * parts so that IG steps add up before the expensive one. ∂M/∂x = J_LN(x)^T (W · ∂M/∂q); with
 * x̂ = (x − μ)·r the normalized residual input, w LN1's weight and ĝ = w ⊙ (W ∂M/∂q),
 *   J^T(…) = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)).
 * RMSNorm is the same without centring: x̂ = x·r with r = 1/rms(x), and no mean(ĝ) term.
 * r·ĝ and r·mean(ĝ) = (r ∂M/∂q) · (row sums of (diag(w)W)^T)/d are linear in r·∂M/∂q, so a sum over
 * passes needs only Σ r·∂M/∂q (small: [b·p, 3·H·dh]) and the x̂ term Σ r·mean(ĝ ⊙ x̂) ⊗ x̂, where
 * mean(ĝ ⊙ x̂) = ∂M/∂q · ((x̂ ⊙ w)·W)/d and (x̂ ⊙ w)·W = q − (b_LN·W + b_q) is the forward's own q.
 * headGradientTerms gives one pass's parts (summed over its K stacked copies); headInputGradients
 * turns summed parts into [3H, b·p, d], q/k/v-major (which·H + h).
 */
export interface HeadGradientTerms {
  /** Σ r·∂M/∂q,k,v, [b·p, 3·H·dh] (∂M/∂q,k,v without LayerNorm). */
  readonly g: tf.Tensor2D;
  /** With LayerNorm: Σ r·mean(ĝ ⊙ x̂) ⊗ x̂, [3H, b·p, d]. */
  readonly xTerm?: tf.Tensor3D;
}

/** One pass's terms: grads and values at attn.hook_{q,k,v} ([K·b, p, H, dh]), the layer's residual input [K·b, p, d]. */
export function headGradientTerms(grads: readonly [tf.Tensor, tf.Tensor, tf.Tensor], values: readonly [tf.Tensor, tf.Tensor, tf.Tensor] | undefined, residPre: tf.Tensor | undefined, w: LayerHeadWeights, eps: number, copies: number): HeadGradientTerms {
  return tf.tidy(() => {
    const g = qkvRows(...grads); // [K·bp, 3H·dh]
    if (!w.ln) return { g: foldCopies(g, copies) as tf.Tensor2D };
    if (!values || !residPre) throw new Error('headGradientTerms: LayerNorm needs the q/k/v values and the residual input');
    const [kbp, cols] = g.shape;
    const d = w.dModel;
    const rows3 = w.ln.rowSums.shape[0];
    const x = tf.reshape(residPre, [kbp, d]);
    const xc = w.ln.centred ? tf.sub(x, tf.mean(x, -1, true)) : x; // RMSNorm: no centring
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)); // [K·bp, 1]
    const gr = tf.mul(g, r);
    const proj = tf.sub(qkvRows(...values), tf.reshape(w.ln.offset, [cols])); // (x̂ ⊙ w)·W
    const meanGx = tf.div(tf.sum(tf.reshape(tf.mul(gr, proj), [kbp, rows3, -1]), -1), d); // [K·bp, 3H]
    const bp = kbp / copies;
    const perCopy = tf.reshape(tf.transpose(tf.reshape(meanGx, [copies, bp, rows3]), [0, 2, 1]), [copies, rows3, bp, 1]);
    const xhat = tf.reshape(tf.mul(xc, r), [copies, 1, bp, d]);
    const xTerm = tf.reshape(foldCopies(tf.mul(perCopy, xhat), copies), [rows3, bp, d]) as tf.Tensor3D;
    return { g: foldCopies(gr, copies) as tf.Tensor2D, xTerm };
  });
}

/** [3H, b·p, d] from summed terms. */
export function headInputGradients(terms: HeadGradientTerms, w: LayerHeadWeights): tf.Tensor3D {
  return tf.tidy(() => {
    const g = qkvMajor(terms.g, w.rows); // [3H, bp, dh]
    const main = bmm(g, w.inputT()); // [3H, bp, d]
    if (!w.ln) return main as tf.Tensor3D;
    if (!w.ln.centred) return tf.sub(main, terms.xTerm!) as tf.Tensor3D; // RMSNorm: J^T = r·(ĝ − x̂·mean(ĝ ⊙ x̂))
    const d = w.dModel;
    const meanG = tf.div(tf.sum(tf.mul(g, w.ln.rowSums), -1, true), d); // r·mean(ĝ), [3H, bp, 1]
    return tf.sub(tf.sub(main, meanG), terms.xTerm!) as tf.Tensor3D;
  });
}

/** Split path: the gradients at hook_{q,k,v}_input ([K·b, p, H, d]) -> [b·p, 3·H·d], summed over copies. */
export function splitGradientTerms(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, copies: number): tf.Tensor2D {
  return tf.tidy(() => foldCopies(qkvRows(q, k, v), copies) as tf.Tensor2D);
}

/** [b·p, 3·H·x] -> [3H, b·p, x]. */
export function qkvMajor(rows: tf.Tensor2D, nRows: number): tf.Tensor3D {
  return tf.tidy(() => tf.transpose(tf.reshape(rows, [rows.shape[0], nRows, -1]), [1, 0, 2]) as tf.Tensor3D);
}
