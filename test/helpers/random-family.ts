import type { ModelConfig } from '../../src/model/config.js';
import { configFromHf } from '../../src/model/config.js';
import type { LayerWeights, ModelWeights, NormWeights } from '../../src/model/arch/types.js';
import type { HostTensor } from '../../src/model/safetensors.js';
import { Transformer } from '../../src/model/transformer.js';
import { TestRng } from './attribution-models.js';

/**
 * A model of any family with random weights, built from a config.json object straight into the
 * family-neutral description (no checkpoint names involved): for benchmarks and engine tests.
 */
export function randomFamilyModel(config: Record<string, unknown>, seed = 1, opts: { biases?: boolean } = {}): Transformer {
  const cfg = configFromHf(config, 'random model');
  return new Transformer(cfg, randomDescription(cfg, seed, opts));
}

/** Biases everywhere when `biases` (default: LayerNorm models, as GPT-2 and NeoX have them). */
export function randomDescription(cfg: ModelConfig, seed = 1, opts: { biases?: boolean } = {}): ModelWeights {
  const rng = new TestRng(seed);
  const { dModel: d, dMlp: dm, dVocab: V, nHeads: H, nKvHeads: Hkv, dHead: dh } = cfg;
  const gauss = (shape: number[], std = 1 / Math.sqrt(shape[0])): HostTensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    return { shape, data };
  };
  const norm = (): NormWeights | undefined => {
    if (cfg.normalization === 'none') return undefined;
    const w = gauss([d], 0.1);
    for (let i = 0; i < d; i++) w.data[i] += 1;
    return cfg.normalization === 'LN' ? { w, b: gauss([d], 0.02) } : { w };
  };
  const biases = opts.biases ?? cfg.normalization === 'LN';
  const bias = (n: number) => (biases ? gauss([n], 0.02) : undefined);
  const layers: LayerWeights[] = Array.from({ length: cfg.nLayers }, () => ({
    ln1: norm(),
    attn: { wQ: gauss([d, H * dh]), wK: gauss([d, Hkv * dh]), wV: gauss([d, Hkv * dh]), bQ: bias(H * dh), bK: bias(Hkv * dh), bV: bias(Hkv * dh), wO: gauss([H * dh, d]), bO: bias(d) },
    postAttnNorm: cfg.postNorms ? norm() : undefined,
    ln2: cfg.attnOnly ? undefined : norm(),
    mlp: cfg.attnOnly ? undefined : { wIn: gauss([d, dm]), bIn: bias(dm), wGate: cfg.gatedMlp ? gauss([d, dm]) : undefined, bGate: cfg.gatedMlp ? bias(dm) : undefined, wOut: gauss([dm, d]), bOut: bias(d) },
    postMlpNorm: cfg.postNorms ? norm() : undefined,
  }));
  return {
    embed: gauss([V, d], 0.1),
    posEmbed: cfg.positional === 'learned' ? gauss([cfg.nCtx, d], 0.05) : undefined,
    layers,
    lnF: norm(),
    unembed: cfg.tiedEmbeddings ? undefined : gauss([V, d], 0.1),
  };
}

/** config.json objects of each family at GPT-2-small's size (12 layers, d 768, 12 heads). */
export const SMALL_FAMILY_CONFIGS: Readonly<Record<string, Record<string, unknown>>> = {
  gpt2: { model_type: 'gpt2', n_layer: 12, n_head: 12, n_embd: 768, vocab_size: 50257, n_positions: 1024 },
  neox: { model_type: 'gpt_neox', num_hidden_layers: 12, num_attention_heads: 12, hidden_size: 768, intermediate_size: 3072, vocab_size: 50304, rotary_pct: 0.25, use_parallel_residual: true },
  llama: { model_type: 'llama', num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, hidden_size: 768, intermediate_size: 2048, vocab_size: 50257, rope_theta: 500000 },
  gemma2: {
    model_type: 'gemma2', num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, hidden_size: 768, head_dim: 64, intermediate_size: 2048, vocab_size: 50257,
    query_pre_attn_scalar: 64, attn_logit_softcapping: 50, final_logit_softcapping: 30, sliding_window: 8,
  },
};
