import type { HostTensor } from '../../src/model/safetensors.js';
import { modelFromTensors } from '../../src/model/arch/index.js';
import type { Transformer } from '../../src/model/transformer.js';

/** A Llama-shape model (RMSNorm, rotary, SwiGLU, grouped-query attention) with seeded random weights, as HF names them. */
export interface RandomLlamaSpec {
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  dModel: number;
  dMlp: number;
  vocab: number;
  nCtx?: number;
  seed?: number;
}

export function randomLlamaTensors(spec: RandomLlamaSpec): { config: Record<string, unknown>; tensors: Map<string, HostTensor> } {
  const dh = spec.dModel / spec.nHeads;
  const config = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: spec.dModel,
    intermediate_size: spec.dMlp,
    num_attention_heads: spec.nHeads,
    num_key_value_heads: spec.nKvHeads,
    num_hidden_layers: spec.nLayers,
    head_dim: dh,
    vocab_size: spec.vocab,
    max_position_embeddings: spec.nCtx ?? 128,
    rms_norm_eps: 1e-5,
    rope_parameters: { rope_theta: 500000.0, rope_type: 'default' },
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
  };
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
  const { dModel: d, dMlp: dm, nHeads: H, nKvHeads: Hkv } = spec;
  put('model.embed_tokens.weight', [spec.vocab, d], 0.5);
  for (let l = 0; l < spec.nLayers; l++) {
    const p = `model.layers.${l}`;
    put(`${p}.input_layernorm.weight`, [d], 0.05, 1);
    // nn.Linear: [out, in]
    put(`${p}.self_attn.q_proj.weight`, [H * dh, d], 0.1);
    put(`${p}.self_attn.k_proj.weight`, [Hkv * dh, d], 0.1);
    put(`${p}.self_attn.v_proj.weight`, [Hkv * dh, d], 0.1);
    put(`${p}.self_attn.o_proj.weight`, [d, H * dh], 0.1);
    put(`${p}.post_attention_layernorm.weight`, [d], 0.05, 1);
    put(`${p}.mlp.gate_proj.weight`, [dm, d], 0.1);
    put(`${p}.mlp.up_proj.weight`, [dm, d], 0.1);
    put(`${p}.mlp.down_proj.weight`, [d, dm], 0.1);
  }
  put('model.norm.weight', [d], 0.05, 1);
  put('lm_head.weight', [spec.vocab, d], 0.1);
  return { config, tensors };
}

export function randomLlama(spec: RandomLlamaSpec): Transformer {
  const { config, tensors } = randomLlamaTensors(spec);
  return modelFromTensors(config, tensors, 'random llama');
}

/** Llama-3.2-1B's block shape, scaled down in depth for the bench (d 2048 is too much for a 2-core box). */
export const LLAMA_BENCH: RandomLlamaSpec = { nLayers: 4, nHeads: 8, nKvHeads: 2, dModel: 256, dMlp: 704, vocab: 2048, nCtx: 128, seed: 5 };
