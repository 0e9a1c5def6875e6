import * as tf from '@tensorflow/tfjs';
import { CircuitryError } from '../errors.js';
import { type MetricName, MetricTargets, lastLogits, metricMean } from './index.js';

/**
 * The smallest |M(clean) − M(corrupted)| a discovery or patching run can explain: 1e-6 in the
 * metric's units, or 1e-5 of the larger of the two values. Below it every recovery is 0/0 and
 * any "circuit" is noise.
 */
export function metricGapFloor(clean: number, corrupted: number): number {
  return Math.max(1e-6, 1e-5 * Math.max(Math.abs(clean), Math.abs(corrupted)));
}

/**
 * Stops a run whose clean and corrupted prompts are indistinguishable to the metric (e.g. the
 * same prompts twice): the message names both values and the floor. Call it right after the two
 * unpatched runs, before any expensive stage.
 */
export function checkMetricGap(metric: string, clean: number, corrupted: number, where = 'the dataset'): void {
  const floor = metricGapFloor(clean, corrupted);
  const gap = Math.abs(clean - corrupted);
  if (!(gap >= floor)) {
    const f = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));
    throw new CircuitryError(
      `${where}: the clean and corrupted runs give the same ${metric} (clean ${f(clean)}, corrupted ${f(corrupted)}; ` +
        `|difference| ${gap.toExponential(2)} is below the floor ${floor.toExponential(2)}): there is no behaviour to explain. ` +
        'Check that the corrupted prompts differ from the clean ones where it matters (or pick another --metric)',
    );
  }
}

/** What `unpatchedMetrics` needs of a model (the Transformer's forward at the last position). */
interface ForwardModel {
  readonly cfg: { readonly dVocab: number };
  tokens(rows: readonly (readonly number[])[]): tf.Tensor2D;
  forward(tokens: tf.Tensor2D, opts: { lastPositionOnly: true; lastQueryOnly: true }): tf.Tensor;
}

/**
 * M(clean) and M(corrupted), dataset means, from two plain forward passes per batch at the last
 * position only: the cheap check a command makes before its expensive work (checkMetricGap).
 */
export function unpatchedMetrics(
  model: ForwardModel,
  data: { readonly clean: readonly (readonly number[])[]; readonly corrupted: readonly (readonly number[])[]; readonly answers: readonly (readonly number[])[]; readonly wrongs: readonly (readonly number[])[] },
  metric: MetricName,
  batchSize = 32,
): { clean: number; corrupted: number } {
  const n = data.clean.length;
  let clean = 0;
  let corrupted = 0;
  for (let s = 0; s < n; s += batchSize) {
    const last = (rows: readonly (readonly number[])[]) => {
      const tokens = model.tokens(rows.slice(s, s + batchSize));
      try {
        const logits = model.forward(tokens, { lastPositionOnly: true, lastQueryOnly: true });
        try {
          return tf.tidy(() => lastLogits(logits));
        } finally {
          logits.dispose();
        }
      } finally {
        tokens.dispose();
      }
    };
    const c = last(data.clean);
    const k = last(data.corrupted);
    const targets = new MetricTargets(data.answers.slice(s, s + batchSize), data.wrongs.slice(s, s + batchSize), model.cfg.dVocab, c);
    try {
      const b = Math.min(batchSize, n - s);
      const mean = (x: tf.Tensor2D) => tf.tidy(() => metricMean(metric, tf.expandDims(x, 1), targets).dataSync()[0]);
      clean += (mean(c) * b) / n;
      corrupted += (mean(k) * b) / n;
    } finally {
      targets.dispose();
      tf.dispose([c, k]);
    }
  }
  return { clean, corrupted };
}
