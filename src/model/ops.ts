import * as tf from '@tensorflow/tfjs';
import { simdActive, transposedProductFast } from '../backend/simd.js';

/**
 * Building blocks of the forward pass. On wasm, XNNPACK's matmul with a transposed operand is
 * ~10x slower than a plain one: the backward pass of a frozen weight with long rows goes to the
 * SIMD loops' A·Bᵀ (backend/simd.ts), and other products multiply by a materialised transpose.
 */

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(x, perm);
}

/**
 * a @ b with one leading batch dim at most. A batch of one runs as a 2-D product. On wasm with
 * the SIMD loops (backend/simd.ts) a batch runs as one batched product: 1.4–4x faster than a
 * loop of 2-D products for heads × tokens ([12, 128, 768] × [12, 768, 64]: 12 ms against 49 ms), whose unstacking, per-slice packing and stacking cost more than the products.
 * Without them wasm's BatchMatMul is a scalar fallback (~15x slower than its 2-D product), so small
 * batches run as that loop; large batches of tiny matrices (attention scores) stay batched.
 */
export function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2 && b.rank === 2) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  if (a.rank === 3 && b.rank === 3 && a.shape[0] === b.shape[0] && a.shape[0] <= 64) {
    if (a.shape[0] === 1) return tf.expandDims(tf.matMul(tf.squeeze(a, [0]) as tf.Tensor2D, tf.squeeze(b, [0]) as tf.Tensor2D), 0);
    if (simdActive()) return tf.matMul(a, b);
    const as = tf.unstack(a);
    const bs = tf.unstack(b);
    return tf.stack(as.map((x, i) => tf.matMul(x as tf.Tensor2D, bs[i] as tf.Tensor2D)));
  }
  return tf.matMul(a, b);
}

/** a @ b for two activations (same batch dims); both get gradients. */
export function matmul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, y]);
    return {
      value: bmm(x, y),
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const [xs, ys] = saved as tf.Tensor[];
          return [bmm(dy as tf.Tensor, swapLast(ys)), bmm(swapLast(xs), dy as tf.Tensor)];
        }),
    };
  });
  return f(a, b) as tf.Tensor;
}

/**
 * A weight matrix with its transpose cached. `trainable` weights are variables whose gradient
 * is computed; frozen weights pass gradients only to the activation.
 */
export class Weight {
  readonly w: tf.Tensor;
  private wt: tf.Tensor | undefined;
  constructor(
    w: tf.Tensor,
    readonly trainable: boolean,
  ) {
    this.w = trainable ? tf.variable(w, true) : tf.keep(w);
  }

  /**
   * dy·Wᵀ, the backward pass of x·W. Long rows run as a product with a transposed operand on the
   * SIMD loops (as fast, and no copy of W held); elsewhere through the materialised transpose.
   */
  backward(dy: tf.Tensor): tf.Tensor {
    if (!this.trainable && transposedProductFast(this.w.shape[this.w.rank - 1])) return tf.matMul(dy, this.w, false, true);
    return bmm(dy, this.transposed());
  }

  /** The transpose of the last two dims, materialised once for frozen weights. */
  private transposed(): tf.Tensor {
    if (this.trainable) return swapLast(this.w);
    if (!this.wt) this.wt = tf.keep(tf.tidy(() => swapLast(this.w)));
    return this.wt;
  }

  dispose(): void {
    this.w.dispose();
    this.wt?.dispose();
  }
}

/**
 * A frozen weight W [n, k] held as the rows of Wᵀ [k, n]: the unembedding as the embedding's
 * rows (tied models share them, so W_U costs no memory) or as lm_head's. x·W is x·rowsᵀ on the
 * SIMD loops' A·Bᵀ; its gradient dy·rows is a plain product. Without the loops, Wᵀ·… goes through
 * a transpose materialised once.
 */
export class RowsWeight {
  private wt: tf.Tensor | undefined;
  constructor(
    readonly rows: tf.Tensor,
    private readonly owned: boolean,
  ) {}

  /** x [m, n] · W → [m, k]. */
  product(x: tf.Tensor2D): tf.Tensor2D {
    const rows = this.rows as tf.Tensor2D;
    const fast = transposedProductFast(rows.shape[1]);
    const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const xin = args[0] as tf.Tensor2D;
      return {
        value: fast ? tf.matMul(xin, rows, false, true) : tf.matMul(xin, this.transposed() as tf.Tensor2D),
        gradFunc: (dy) => tf.matMul(dy as tf.Tensor2D, rows),
      };
    });
    return f(x) as tf.Tensor2D;
  }

  private transposed(): tf.Tensor {
    if (!this.wt) this.wt = tf.keep(tf.transpose(this.rows));
    return this.wt;
  }

  dispose(): void {
    if (this.owned) this.rows.dispose();
    this.wt?.dispose();
  }
}

// Custom gradients tidy their own intermediates: tfjs runs a customGrad's gradFunc outside the
// per-node scope of its backward pass, so they would otherwise live until the whole backward ends
// (on GPT-2 small, ~150 MB of GELU-gradient temporaries at the backward's peak).

/**
 * x [B, m, n] times each of the k frozen matrices of its batch entry, W [B, k, n, c] → [B, k, m, c]:
 * one broadcast product (no copy of x per matrix). Its gradient sums dx over the k products
 * (tfjs's BatchMatMul gradient does not reduce broadcast axes).
 */
export function sharedInputProduct(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  const [B, m, n] = x.shape;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xin = args[0] as tf.Tensor;
    return {
      value: tf.matMul(tf.reshape(xin, [B, 1, m, n]), w),
      gradFunc: (dy) => tf.tidy(() => tf.sum(tf.matMul(dy as tf.Tensor, w, false, true), 1)),
    };
  });
  return f(x) as tf.Tensor;
}

/** x @ W where x is [..., n] (or [batch, m, n] with a batched W [batch, n, k]). */
export function linear(x: tf.Tensor, weight: Weight): tf.Tensor {
  if (weight.trainable) return matmul(x, weight.w);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xin = args[0] as tf.Tensor;
    return {
      value: bmm(xin, weight.w),
      gradFunc: (dy) => tf.tidy(() => weight.backward(dy as tf.Tensor)),
    };
  });
  return f(x) as tf.Tensor;
}

/** x − mean(x) and 1/σ(x) over the last axis (biased variance, as PyTorch): LayerNorm without its affine part. */
export function standardize(x: tf.Tensor, eps: number): { centered: tf.Tensor; rstd: tf.Tensor } {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  return { centered, rstd: tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps)) };
}

/** LayerNorm over the last axis (without a bias when b is undefined). */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, eps: number): tf.Tensor {
  const { centered, rstd } = standardize(x, eps);
  const y = tf.mul(tf.mul(centered, rstd), w);
  return b ? tf.add(y, b) : y;
}

/** RMSNorm over the last axis: x / √(mean(x²) + eps) · w (no centring, no bias). */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
}

/** SiLU (swish), x·σ(x): SwiGLU's gate activation. */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GPT-2's tanh-approximated GELU (`gelu_new`), 0.5·x·(1 + tanh(u)), written as x·σ(2u): the same
 * function (1 + tanh(u) = 2σ(2u)), and wasm's Sigmoid is ~40x faster than its Tanh. Its gradient
 * is written out, σ + x·σ(1 − σ)·2u', u' = √(2/π)(1 + 3·0.044715·x²): ~9 elementwise ops where
 * autodiff of the forward records ~20 (about a tenth of a small model's backward pass).
 */
export const geluNew = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const u = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.square(x)))));
  const s = tf.sigmoid(tf.mul(2, u));
  save([x, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy, saved) =>
      tf.tidy(() => {
        const [xs, ss] = saved as tf.Tensor[];
        const du2 = tf.mul(2 * SQRT_2_OVER_PI, tf.add(1, tf.mul(3 * 0.044715, tf.square(xs)))); // 2u'
        const ds = tf.mul(tf.mul(ss, tf.sub(1, ss)), tf.mul(xs, du2));
        return tf.mul(dy as tf.Tensor, tf.add(ss, ds));
      }),
  };
}) as (x: tf.Tensor) => tf.Tensor;

/** Exact GELU via erf. */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}
