import * as tf from '@tensorflow/tfjs';
import { SMALL_FAMILY_CONFIGS, randomFamilyModel } from '../helpers/random-family.js';
import { timeMs, fmt } from './timing.js';

/**
 * Forward and forward+backward of each family's block at GPT-2-small's size (random weights),
 * against GPT-2's own forward in the same run. `BENCH_TINY=1` shrinks it to a smoke test.
 */
export async function benchFamilies(log: (line: string) => void): Promise<void> {
  const tiny = process.env.BENCH_TINY === '1';
  const [B, P] = tiny ? [2, 8] : [8, 16];
  let gpt2Forward = 0;
  for (const [family, full] of Object.entries(SMALL_FAMILY_CONFIGS)) {
    const config = tiny ? shrink(full) : full;
    const model = randomFamilyModel(config, 1);
    const V = model.cfg.dVocab;
    const tokens = Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, p) => (b * 7919 + p * 104729) % V));
    const scalar = (logits: tf.Tensor) => tf.mean(tf.slice(logits, [0, P - 1, 0], [B, 1, 8])) as tf.Scalar;
    const fwd = await timeMs(() => model.forward(tokens).dispose());
    const fwdBwd = await timeMs(() => model.gradients(tokens, ['hook_embed'], scalar).grads.forEach((g) => g.dispose()));
    if (family === 'gpt2') gpt2Forward = fwd;
    log(`${family.padEnd(7)} forward ${fmt(fwd, 0).padStart(5)} ms (${fmt(fwd / gpt2Forward)}× GPT-2's)  forward+backward ${fmt(fwdBwd, 0).padStart(5)} ms (${fmt(fwdBwd / fwd)}× its forward)`);
    model.dispose();
  }
}

function shrink(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  for (const k of ['n_layer', 'num_hidden_layers']) if (k in out) out[k] = 2;
  for (const k of ['n_embd', 'hidden_size']) if (k in out) out[k] = 64;
  for (const k of ['n_head', 'num_attention_heads']) if (k in out) out[k] = 4;
  if ('num_key_value_heads' in out) out.num_key_value_heads = 2;
  if ('head_dim' in out) out.head_dim = 16;
  if ('query_pre_attn_scalar' in out) out.query_pre_attn_scalar = 16;
  if ('intermediate_size' in out) out.intermediate_size = 128;
  for (const k of ['vocab_size']) out[k] = 512;
  return out;
}
