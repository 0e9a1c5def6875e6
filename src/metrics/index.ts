import * as tf from '@tensorflow/tfjs';
import { CircuitryError } from '../errors.js';

/**
 * Task metrics, computed per example at the last position. Answers and wrong answers are token
 * sets (usually of one token); a set stands for its summed probability, so logit difference
 * generalises to log Σp(answers) − log Σp(wrongs), which is the plain logit difference for single
 * tokens.
 */
export const METRIC_NAMES = ['logit-diff', 'prob', 'logprob', 'accuracy', 'kl'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export function parseMetricName(name: string, where = '--metric'): MetricName {
  if (!(METRIC_NAMES as readonly string[]).includes(name)) {
    throw new CircuitryError(`${where}: unknown metric '${name}' (expected one of ${METRIC_NAMES.join(', ')})`);
  }
  return name as MetricName;
}

/**
 * The tokens whose logits a metric reads, ascending, or undefined when it reads the whole
 * vocabulary (a softmax, an argmax, KL). Logit difference reads the answer and wrong sets alone,
 * so a pass may unembed just those (Transformer.vocabularySubset).
 */
export function tokensRead(name: MetricName, answers: readonly (readonly number[])[], wrongs: readonly (readonly number[])[]): number[] | undefined {
  if (name !== 'logit-diff') return undefined;
  return [...new Set([...answers, ...wrongs].flat())].sort((a, b) => a - b);
}

/** Whether a larger value of the metric means the model does the task better. */
export function higherIsBetter(name: MetricName): boolean {
  return name !== 'kl';
}

/** What a metric needs besides the logits. Caller-owned tensors; `dispose()` frees them. */
export class MetricTargets {
  /** [B, V] 0/1 masks of the answer and wrong-answer sets. */
  readonly answerMask: tf.Tensor2D;
  readonly wrongMask: tf.Tensor2D;
  /** [B, V] log-probabilities of the clean run at the last position (for KL). */
  readonly cleanLogProbs?: tf.Tensor2D;
  readonly batch: number;
  /** Whether every answer (wrong-answer) set is one token: its log-sum-exp is then the logit. */
  readonly singleAnswers: boolean;
  readonly singleWrongs: boolean;

  constructor(answers: readonly (readonly number[])[], wrongs: readonly (readonly number[])[], vocab: number, cleanLastLogits?: tf.Tensor2D) {
    this.batch = answers.length;
    this.singleAnswers = answers.every((set) => set.length === 1);
    this.singleWrongs = wrongs.every((set) => set.length === 1);
    const mask = (sets: readonly (readonly number[])[], what: string) => {
      const m = new Float32Array(sets.length * vocab);
      sets.forEach((set, b) => {
        for (const id of set) {
          if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new CircuitryError(`${what} token ${id} of example ${b} is outside the vocabulary [0, ${vocab - 1}]`);
          m[b * vocab + id] = 1;
        }
      });
      return tf.tensor2d(m, [sets.length, vocab]);
    };
    this.answerMask = mask(answers, 'answer');
    this.wrongMask = mask(wrongs, 'wrong');
    if (cleanLastLogits) this.cleanLogProbs = tf.tidy(() => tf.logSoftmax(cleanLastLogits, -1) as tf.Tensor2D);
  }

  /** Examples [start, start + n) as targets of their own (copies; the caller disposes them). */
  rows(start: number, n: number): MetricTargets {
    if (!(Number.isInteger(start) && Number.isInteger(n) && start >= 0 && n >= 1 && start + n <= this.batch)) throw new Error(`MetricTargets.rows(${start}, ${n}) of ${this.batch} examples`);
    const slice = (t: tf.Tensor2D) => tf.slice(t, [start, 0], [n, t.shape[1]]);
    // the flags stay the whole batch's, so a part computes its metric as the whole does
    const part = Object.create(MetricTargets.prototype) as MetricTargets;
    return Object.assign(part, {
      answerMask: slice(this.answerMask),
      wrongMask: slice(this.wrongMask),
      ...(this.cleanLogProbs ? { cleanLogProbs: slice(this.cleanLogProbs) } : {}),
      batch: n,
      singleAnswers: this.singleAnswers,
      singleWrongs: this.singleWrongs,
    });
  }

  dispose(): void {
    tf.dispose([this.answerMask, this.wrongMask]);
    this.cleanLogProbs?.dispose();
  }
}

/** Logits at the last position: [N, p, V] -> [N, V]. */
export function lastLogits(logits: tf.Tensor): tf.Tensor2D {
  const [n, p, v] = logits.shape;
  return tf.reshape(tf.slice(logits, [0, p - 1, 0], [n, 1, v]), [n, v]);
}

/**
 * The row max, as a constant for autodiff: a log-sum-exp shifted by it is exact for any shift,
 * and wasm's gradient of Max (a broadcast Equal over [N, V]) is slow.
 */
const constantMax = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.max(x, -1, true), gradFunc: () => tf.zerosLike(x) };
});

/** log Σ exp(x) over the last axis (within `mask` when given), stable. [..., V] -> [...]. */
function logSumExp(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
  const max = constantMax(x) as tf.Tensor;
  const e = tf.exp(tf.sub(x, max));
  return tf.add(tf.log(tf.sum(mask ? tf.mul(e, mask) : e, -1)), tf.squeeze(max, [-1]));
}

/** log Σ_{set} exp(x) for per-example token sets (masks [B, V]); the logit itself for one-token sets. */
function setLogSumExp(x: tf.Tensor, mask: tf.Tensor, single: boolean): tf.Tensor {
  return single ? tf.sum(tf.mul(x, mask), -1) : logSumExp(x, mask);
}

/**
 * The metric for each example, [N] where N = K·B (K stacked copies of the B examples, as in
 * batched patching): rows are matched to targets modulo B.
 */
export function metricPerExample(name: MetricName, logits: tf.Tensor, targets: MetricTargets): tf.Tensor1D {
  return tf.tidy(() => {
    const last = lastLogits(logits);
    const [n, v] = last.shape;
    const k = n / targets.batch;
    if (!Number.isInteger(k)) throw new Error(`batch ${n} is not a multiple of the ${targets.batch} examples`);
    // [K, B, V]: the [B, V] targets broadcast over the copies (Tile is slow on wasm)
    const x = tf.reshape(last, [k, targets.batch, v]);
    const per = ((): tf.Tensor => {
      switch (name) {
        case 'logit-diff':
          return tf.sub(setLogSumExp(x, targets.answerMask, targets.singleAnswers), setLogSumExp(x, targets.wrongMask, targets.singleWrongs));
        case 'prob':
          return tf.sum(tf.mul(tf.softmax(x, -1), targets.answerMask), -1);
        case 'logprob':
          return tf.sub(setLogSumExp(x, targets.answerMask, targets.singleAnswers), logSumExp(x));
        case 'accuracy': {
          const top = tf.argMax(last, -1);
          return tf.sum(tf.mul(tf.reshape(tf.oneHot(top, v), [k, targets.batch, v]), targets.answerMask), -1);
        }
        case 'kl': {
          if (!targets.cleanLogProbs) throw new Error('the kl metric needs the clean run (MetricTargets.cleanLogProbs)');
          const lpClean = targets.cleanLogProbs;
          return tf.sum(tf.mul(tf.exp(lpClean), tf.sub(lpClean, tf.logSoftmax(x, -1))), -1);
        }
      }
    })();
    return tf.reshape(per, [n]) as tf.Tensor1D;
  });
}

/** The metric's batch mean per stacked copy: [K]. */
export function metricPerCopy(name: MetricName, logits: tf.Tensor, targets: MetricTargets): tf.Tensor1D {
  return tf.tidy(() => {
    const per = metricPerExample(name, logits, targets);
    return tf.mean(tf.reshape(per, [-1, targets.batch]), 1) as tf.Tensor1D;
  });
}

/** The metric's batch mean as a scalar tensor (differentiable; for gradients). */
export function metricMean(name: MetricName, logits: tf.Tensor, targets: MetricTargets): tf.Scalar {
  return tf.tidy(() => tf.mean(metricPerExample(name, logits, targets)) as tf.Scalar);
}

/** Normalized recovery (patched − corrupted) / (clean − corrupted); NaN when clean = corrupted. */
export function recovery(patched: number, clean: number, corrupted: number): number {
  const span = clean - corrupted;
  return span === 0 ? NaN : (patched - corrupted) / span;
}

export { checkMetricGap, metricGapFloor, unpatchedMetrics } from './gap.js';
