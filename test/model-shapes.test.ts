import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { randomFamilyModel } from './helpers/random-family.js';
import { maxAbsDiff } from './helpers/fixtures.js';

/**
 * Shapes the fixtures do not cover, on random weights: the fused, split and per-head paths and
 * the trimmed last block must agree with each other, and gradients must flow, whatever the shape.
 */
const SHAPES: Record<string, Record<string, unknown>> = {
  'gemma2, head_dim ≠ d/H, window 3 on both layers': {
    model_type: 'gemma2', num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, hidden_size: 48, head_dim: 32, intermediate_size: 64,
    vocab_size: 97, query_pre_attn_scalar: 20, attn_logit_softcapping: 2, final_logit_softcapping: 5, sliding_window: 3, layer_types: ['sliding_attention', 'sliding_attention'],
  },
  'llama with biases on every projection, llama3 rope scaling, tied': {
    model_type: 'llama', num_hidden_layers: 2, num_attention_heads: 6, num_key_value_heads: 3, hidden_size: 48, intermediate_size: 80, vocab_size: 97, tie_word_embeddings: true,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 }, rope_theta: 500000,
  },
  'neox sequential, rotary on half the head': {
    model_type: 'gpt_neox', num_hidden_layers: 2, num_attention_heads: 3, hidden_size: 48, intermediate_size: 96, vocab_size: 97, rotary_pct: 0.5, rotary_emb_base: 1000, use_parallel_residual: false,
  },
};

beforeAll(async () => {
  await initBackend('wasm');
});

for (const [name, config] of Object.entries(SHAPES)) {
  describe(name, () => {
    it('fused, split and per-head paths, and lastQueryOnly, agree; gradients are finite', () => {
      const model = randomFamilyModel(config, 5, { biases: name.includes('biases') });
      const prompts = [
        [1, 5, 9, 2, 7, 3, 8],
        [4, 4, 6, 1, 0, 2, 9],
      ];
      const a = model.forward(prompts);
      const b = model.forward(prompts, { splitQkvInput: true, useAttnResult: true });
      expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(2e-5);
      const c = model.forward(prompts, { lastPositionOnly: true, lastQueryOnly: true });
      const last = tf.slice(a, [0, 6, 0], [2, 1, model.cfg.dVocab]);
      expect(maxAbsDiff(last.dataSync(), c.dataSync())).toBeLessThan(2e-5);
      const { grads } = model.gradients(prompts, ['hook_embed', 'blocks.1.hook_resid_pre'], (l) => tf.sum(tf.slice(l, [0, 6, 0], [2, 1, 3])) as tf.Scalar);
      for (const g of grads.values()) {
        const v = g.dataSync();
        expect(v.every(Number.isFinite)).toBe(true);
        expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0);
      }
      tf.dispose([a, b, c, last, ...grads.values()]);
      model.dispose();
    });
  });
}
