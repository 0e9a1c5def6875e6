import { CircuitryError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';
import { TensorReader, columns, intField, layerNorm, slice1d, unembedding } from './common.js';
import type { ArchAdapter, LayerWeights, ModelWeights } from './types.js';

/**
 * GPT-2: learned positions, LayerNorm, GELU (tanh or exact) or ReLU, fused c_attn. Conv1D
 * weights are already [in, out]; keys may carry a `transformer.` prefix (GPT2LMHeadModel) or
 * not (the hub's own `gpt2`); `attn.bias` / `attn.masked_bias` are mask buffers and are ignored.
 * circuitry's zoo extensions: `attn_only: true` and `normalization: "none"`.
 */
const ACTS = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu: 'gelu', relu: 'relu' } as const;

function config(cfg: Record<string, unknown>, file: string): ModelConfig {
  if (cfg.scale_attn_by_inverse_layer_idx === true || cfg.reorder_and_upcast_attn === true) {
    throw new CircuitryError(`${file}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported`);
  }
  if (cfg.scale_attn_weights === false) throw new CircuitryError(`${file}: scale_attn_weights false is not supported`);
  const nLayers = intField(cfg, 'n_layer', file);
  const nHeads = intField(cfg, 'n_head', file);
  const dModel = intField(cfg, 'n_embd', file);
  if (dModel % nHeads !== 0) throw new CircuitryError(`${file}: n_embd (${dModel}) must be divisible by n_head (${nHeads})`);
  const attnOnly = cfg.attn_only === true;
  const actName = String(cfg.activation_function ?? 'gelu_new');
  if (!(actName in ACTS)) {
    throw new CircuitryError(`${file}: activation_function '${actName}' is not supported (expected one of ${Object.keys(ACTS).join(', ')})`);
  }
  const dHead = dModel / nHeads;
  return {
    family: 'gpt2',
    nLayers,
    nHeads,
    nKvHeads: nHeads,
    dModel,
    dHead,
    dMlp: attnOnly ? 0 : cfg.n_inner == null ? 4 * dModel : intField(cfg, 'n_inner', file),
    dVocab: intField(cfg, 'vocab_size', file),
    nCtx: intField(cfg, 'n_positions', file, 1024),
    act: ACTS[actName as keyof typeof ACTS],
    gatedMlp: false,
    normalization: cfg.normalization === 'none' ? 'none' : 'LN',
    attnOnly,
    tiedEmbeddings: cfg.tie_word_embeddings !== false,
    lnEps: typeof cfg.layer_norm_epsilon === 'number' ? cfg.layer_norm_epsilon : 1e-5,
    positional: 'learned',
    rotaryDim: 0,
    rotaryBase: 0,
    rotaryInvFreq: [],
    parallelAttnMlp: false,
    postNorms: false,
    embedScale: 1,
    attnScale: 1 / Math.sqrt(dHead),
    attnSoftCap: null,
    finalSoftCap: null,
    slidingWindows: Array.from({ length: nLayers }, () => null),
  };
}

function weights(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): ModelWeights {
  const r = new TensorReader(tensors, source, tensors.has('transformer.wte.weight') ? 'transformer.' : '');
  const { dModel: d, dMlp: dm, dVocab: V, nCtx } = cfg;
  const ln = (name: string) => (cfg.normalization === 'LN' ? layerNorm(r, name, d) : undefined);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `h.${l}`;
    const cAttn = r.get(`${p}.attn.c_attn.weight`, [d, 3 * d]);
    const bAttn = r.get(`${p}.attn.c_attn.bias`, [3 * d]);
    layers.push({
      ln1: ln(`${p}.ln_1`),
      attn: {
        wQ: columns(cAttn, 0, d),
        wK: columns(cAttn, d, d),
        wV: columns(cAttn, 2 * d, d),
        bQ: slice1d(bAttn, 0, d),
        bK: slice1d(bAttn, d, d),
        bV: slice1d(bAttn, 2 * d, d),
        wO: r.get(`${p}.attn.c_proj.weight`, [d, d]),
        bO: r.get(`${p}.attn.c_proj.bias`, [d]),
      },
      ln2: cfg.attnOnly ? undefined : ln(`${p}.ln_2`),
      mlp: cfg.attnOnly
        ? undefined
        : {
            wIn: r.get(`${p}.mlp.c_fc.weight`, [d, dm]),
            bIn: r.get(`${p}.mlp.c_fc.bias`, [dm]),
            wOut: r.get(`${p}.mlp.c_proj.weight`, [dm, d]),
            bOut: r.get(`${p}.mlp.c_proj.bias`, [d]),
          },
    });
  }
  // lm_head sits outside `transformer.`
  const head = new TensorReader(tensors, source);
  return {
    embed: r.get('wte.weight', [V, d]),
    posEmbed: r.get('wpe.weight', [nCtx, d]),
    layers,
    lnF: ln('ln_f'),
    unembed: unembedding(head, 'lm_head.weight', cfg.tiedEmbeddings, V, d),
  };
}

function toHf(cfg: ModelConfig): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: cfg.nLayers,
    n_head: cfg.nHeads,
    n_embd: cfg.dModel,
    n_inner: cfg.attnOnly ? null : cfg.dMlp,
    vocab_size: cfg.dVocab,
    n_positions: cfg.nCtx,
    activation_function: cfg.act,
    layer_norm_epsilon: cfg.lnEps,
    tie_word_embeddings: cfg.tiedEmbeddings,
    scale_attn_weights: true,
    ...(cfg.attnOnly ? { attn_only: true } : {}),
    ...(cfg.normalization === 'none' ? { normalization: 'none' } : {}),
  };
}

export const gpt2: ArchAdapter = { family: 'gpt2', modelTypes: ['gpt2'], example: 'gpt2', config, weights, toHf };
