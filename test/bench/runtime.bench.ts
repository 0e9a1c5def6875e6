import * as tf from '@tensorflow/tfjs';
import { randomGpt2, GPT2_SMALL } from '../helpers/random-model.js';
import { timeMs, fmt } from './timing.js';

/** Forward and forward+backward throughput of a GPT-2-small-shaped model at batch 8 × 16. */
export async function benchRuntime(log: (line: string) => void): Promise<void> {
  const model = randomGpt2({ ...GPT2_SMALL, seed: 1 });
  const [B, P] = [8, 16];
  const tokens = Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, p) => (b * 7919 + p * 104729) % GPT2_SMALL.vocab));
  const scalar = (logits: tf.Tensor) => tf.mean(tf.slice(logits, [0, P - 1, 0], [B, 1, 8])) as tf.Scalar;
  const fwd = await timeMs(() => model.forward(tokens).dispose());
  const fwdBwd = await timeMs(() => model.gradients(tokens, ['hook_embed'], scalar).grads.forEach((g) => g.dispose()));
  const n = B * P;
  log(`GPT-2-small shape (random weights), batch ${B} × ${P} tokens`);
  log(`forward:            ${fmt(fwd, 0)} ms  (${fmt((n / fwd) * 1000, 0)} tokens/s)`);
  log(`forward + backward: ${fmt(fwdBwd, 0)} ms  (${fmt((n / fwdBwd) * 1000, 0)} tokens/s)`);
  log(`ratio (forward+backward)/forward: ${fmt(fwdBwd / fwd)}×  (bar ≤ 2.5×)`);
  model.dispose();
}
