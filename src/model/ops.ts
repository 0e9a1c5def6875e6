import * as tf from '@tensorflow/tfjs';

/**
 * Building blocks of the forward pass. Matrix products use explicit transposes in their
 * gradients: on wasm a matmul with a transposed operand is ~8x slower than a plain one, so the
 * backward pass multiplies by a materialised (or cached) transpose instead.
 */

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(x, perm);
}

/** a @ b for two activations (same batch dims); both get gradients. */
export function matmul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, y]);
    return {
      value: tf.matMul(x, y),
      gradFunc: (dy, saved) => {
        const [xs, ys] = saved as tf.Tensor[];
        return [tf.matMul(dy as tf.Tensor, swapLast(ys)), tf.matMul(swapLast(xs), dy as tf.Tensor)];
      },
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
  constructor(w: tf.Tensor, readonly trainable: boolean) {
    this.w = trainable ? tf.variable(w, true) : tf.keep(w);
  }

  /** The transpose of the last two dims, materialised once for frozen weights. */
  transposed(): tf.Tensor {
    if (this.trainable) return swapLast(this.w);
    if (!this.wt) this.wt = tf.keep(tf.tidy(() => swapLast(this.w)));
    return this.wt;
  }

  dispose(): void {
    this.w.dispose();
    this.wt?.dispose();
  }
}

/** x @ W where x is [..., n] (or [batch, m, n] with a batched W [batch, n, k]). */
export function linear(x: tf.Tensor, weight: Weight): tf.Tensor {
  if (weight.trainable) return matmul(x, weight.w);
  const wt = weight.transposed();
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xin = args[0] as tf.Tensor;
    return {
      value: tf.matMul(xin, weight.w),
      gradFunc: (dy) => tf.matMul(dy as tf.Tensor, wt),
    };
  });
  return f(x) as tf.Tensor;
}

/** LayerNorm over the last axis (biased variance, as PyTorch). */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), w), b);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GPT-2's tanh-approximated GELU (`gelu_new`), written out (wasm has no fused kernel). */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.square(x)))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** Exact GELU via erf. */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}
