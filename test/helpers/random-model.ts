import { configFromHf, type ModelConfig } from '../../src/model/config.js';
import type { HostTensor } from '../../src/model/safetensors.js';
import { gpt2WeightsFromTensors } from '../../src/model/weights.js';
import { Transformer } from '../../src/model/transformer.js';

export interface RandomModelSpec {
  nLayers: number;
  nHeads: number;
  dModel: number;
  dMlp?: number;
  vocab: number;
  nCtx?: number;
  seed?: number;
  attnOnly?: boolean;
  normalization?: 'LN' | 'none';
}

/** HF config + GPT-2 tensors with N(0, 0.02²)-like weights from a seeded PRNG. */
export function randomGpt2Tensors(spec: RandomModelSpec): { config: ModelConfig; tensors: Map<string, HostTensor> } {
  const raw = {
    model_type: 'gpt2',
    n_layer: spec.nLayers,
    n_head: spec.nHeads,
    n_embd: spec.dModel,
    n_inner: spec.dMlp ?? 4 * spec.dModel,
    vocab_size: spec.vocab,
    n_positions: spec.nCtx ?? 64,
    activation_function: 'gelu_new',
    ...(spec.attnOnly ? { attn_only: true } : {}),
    ...(spec.normalization === 'none' ? { normalization: 'none' } : {}),
  };
  const config = configFromHf(raw);
  let s = (spec.seed ?? 1) >>> 0;
  const rand = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const tensors = new Map<string, HostTensor>();
  const put = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = offset + scale * (rand() + rand() + rand() - 1.5) * 2;
    tensors.set(name, { shape, data });
  };
  const d = config.dModel;
  put('wte.weight', [config.dVocab, d], 0.02);
  put('wpe.weight', [config.nCtx, d], 0.01);
  const ln = (name: string) => {
    if (config.normalization === 'none') return;
    put(`${name}.weight`, [d], 0.05, 1);
    put(`${name}.bias`, [d], 0.02);
  };
  for (let l = 0; l < config.nLayers; l++) {
    ln(`h.${l}.ln_1`);
    put(`h.${l}.attn.c_attn.weight`, [d, 3 * d], 0.02);
    put(`h.${l}.attn.c_attn.bias`, [3 * d], 0.01);
    put(`h.${l}.attn.c_proj.weight`, [d, d], 0.02);
    put(`h.${l}.attn.c_proj.bias`, [d], 0.01);
    if (!config.attnOnly) {
      ln(`h.${l}.ln_2`);
      put(`h.${l}.mlp.c_fc.weight`, [d, config.dMlp], 0.02);
      put(`h.${l}.mlp.c_fc.bias`, [config.dMlp], 0.01);
      put(`h.${l}.mlp.c_proj.weight`, [config.dMlp, d], 0.02);
      put(`h.${l}.mlp.c_proj.bias`, [d], 0.01);
    }
  }
  ln('ln_f');
  return { config, tensors };
}

export function randomGpt2(spec: RandomModelSpec): Transformer {
  const { config, tensors } = randomGpt2Tensors(spec);
  return new Transformer(config, gpt2WeightsFromTensors(config, tensors, 'random model'));
}

/** GPT-2 small's shape. */
export const GPT2_SMALL: RandomModelSpec = { nLayers: 12, nHeads: 12, dModel: 768, dMlp: 3072, vocab: 50257, nCtx: 1024 };
