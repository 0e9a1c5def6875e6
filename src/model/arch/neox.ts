import { CircuitryError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';
import { TensorReader, intField, layerNorm, numField, ropeInvFreq, ropeSettings, transpose2d, unembedding } from './common.js';
import type { ArchAdapter, LayerWeights, ModelWeights } from './types.js';

/**
 * GPT-NeoX (Pythia): parallel attention + MLP (use_parallel_residual), partial rotary
 * (rotary_pct / partial_rotary_factor of each head), LayerNorm with bias, biases everywhere,
 * untied `embed_out`. The fused query_key_value weight [3d, d] is per head [q | k | v]: head h's
 * q rows are h·3·dh + [0, dh), its k rows the next dh, its v rows the next dh.
 */
const ACTS = { gelu: 'gelu', gelu_new: 'gelu_new', gelu_fast: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu' } as const;

function config(cfg: Record<string, unknown>, file: string): ModelConfig {
  const nLayers = intField(cfg, 'num_hidden_layers', file);
  const nHeads = intField(cfg, 'num_attention_heads', file);
  const dModel = intField(cfg, 'hidden_size', file);
  if (dModel % nHeads !== 0) throw new CircuitryError(`${file}: hidden_size (${dModel}) must be divisible by num_attention_heads (${nHeads})`);
  const dHead = dModel / nHeads;
  const actName = String(cfg.hidden_act ?? 'gelu');
  if (!(actName in ACTS)) throw new CircuitryError(`${file}: hidden_act '${actName}' is not supported (expected one of ${Object.keys(ACTS).join(', ')})`);
  if (cfg.attention_bias === false) throw new CircuitryError(`${file}: attention_bias false is not supported for gpt_neox`);
  const rope = ropeSettings(cfg, file, { theta: numField(cfg, 'rotary_emb_base', file, 10000) });
  const fraction = numField({ f: rope.params.partial_rotary_factor ?? cfg.partial_rotary_factor ?? cfg.rotary_pct ?? 1 }, 'f', `${file} (rotary_pct / partial_rotary_factor)`);
  const rotaryDim = Math.floor(dHead * fraction);
  if (rotaryDim % 2 !== 0 || rotaryDim <= 0) throw new CircuitryError(`${file}: rotary dimension ${rotaryDim} (head_dim ${dHead} × ${fraction}) must be a positive even number`);
  return {
    family: 'neox',
    nLayers,
    nHeads,
    nKvHeads: nHeads,
    dModel,
    dHead,
    dMlp: intField(cfg, 'intermediate_size', file, 4 * dModel),
    dVocab: intField(cfg, 'vocab_size', file),
    nCtx: intField(cfg, 'max_position_embeddings', file, 2048),
    act: ACTS[actName as keyof typeof ACTS],
    gatedMlp: false,
    normalization: 'LN',
    attnOnly: false,
    tiedEmbeddings: cfg.tie_word_embeddings === true,
    lnEps: numField(cfg, 'layer_norm_eps', file, 1e-5),
    positional: 'rotary',
    rotaryDim,
    rotaryBase: rope.theta,
    rotaryInvFreq: ropeInvFreq(rotaryDim, rope.theta, rope.scaling, file),
    parallelAttnMlp: cfg.use_parallel_residual !== false,
    postNorms: false,
    embedScale: 1,
    attnScale: 1 / Math.sqrt(dHead),
    attnSoftCap: null,
    finalSoftCap: null,
    slidingWindows: Array.from({ length: nLayers }, () => null),
  };
}

/** Splits the per-head interleaved [q | k | v] rows of query_key_value into x·W q, k, v matrices. */
function splitQkv(w: HostTensor, b: HostTensor, H: number, dh: number, d: number) {
  const parts = [0, 1, 2].map(() => ({ w: new Float32Array(H * dh * d), b: new Float32Array(H * dh) }));
  for (let h = 0; h < H; h++) {
    for (let which = 0; which < 3; which++) {
      for (let j = 0; j < dh; j++) {
        const src = h * 3 * dh + which * dh + j;
        const dst = h * dh + j;
        parts[which].w.set(w.data.subarray(src * d, (src + 1) * d), dst * d);
        parts[which].b[dst] = b.data[src];
      }
    }
  }
  return parts.map((p) => ({ w: transpose2d({ shape: [H * dh, d], data: p.w }), b: { shape: [H * dh], data: p.b } }));
}

function weights(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): ModelWeights {
  const r = new TensorReader(tensors, source, 'gpt_neox.');
  const { dModel: d, dMlp: dm, dVocab: V, nHeads: H, dHead: dh } = cfg;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `layers.${l}`;
    const [q, k, v] = splitQkv(r.get(`${p}.attention.query_key_value.weight`, [3 * d, d]), r.get(`${p}.attention.query_key_value.bias`, [3 * d]), H, dh, d);
    layers.push({
      ln1: layerNorm(r, `${p}.input_layernorm`, d),
      attn: {
        wQ: q.w,
        wK: k.w,
        wV: v.w,
        bQ: q.b,
        bK: k.b,
        bV: v.b,
        wO: r.linear(`${p}.attention.dense.weight`, d, d),
        bO: r.get(`${p}.attention.dense.bias`, [d]),
      },
      ln2: layerNorm(r, `${p}.post_attention_layernorm`, d),
      mlp: {
        wIn: r.linear(`${p}.mlp.dense_h_to_4h.weight`, dm, d),
        bIn: r.get(`${p}.mlp.dense_h_to_4h.bias`, [dm]),
        wOut: r.linear(`${p}.mlp.dense_4h_to_h.weight`, d, dm),
        bOut: r.get(`${p}.mlp.dense_4h_to_h.bias`, [d]),
      },
    });
  }
  return {
    embed: r.get('embed_in.weight', [V, d]),
    layers,
    lnF: layerNorm(r, 'final_layer_norm', d),
    unembed: unembedding(new TensorReader(tensors, source), 'embed_out.weight', cfg.tiedEmbeddings, V, d),
  };
}

export const neox: ArchAdapter = { family: 'neox', modelTypes: ['gpt_neox'], example: 'EleutherAI/pythia-70m', config, weights };
