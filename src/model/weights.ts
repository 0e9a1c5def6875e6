import type { ModelConfig } from './config.js';
import type { HostTensor } from './safetensors.js';
import { CircuitryError } from '../errors.js';

/**
 * GPT-2 weights in HuggingFace names, checked against the config. Conv1D layers store W as
 * [in, out] (so x @ W, no transpose); keys may carry a `transformer.` prefix (GPT2LMHeadModel)
 * or not (the hub's own `gpt2`); `attn.bias` / `attn.masked_bias` are causal-mask buffers and
 * are ignored.
 */
export interface LayerWeights {
  ln1?: { w: HostTensor; b: HostTensor };
  cAttn: { w: HostTensor; b: HostTensor }; // [d, 3d], [3d]: q | k | v, heads contiguous
  cProj: { w: HostTensor; b: HostTensor }; // [d, d], [d]
  ln2?: { w: HostTensor; b: HostTensor };
  mlp?: { fcW: HostTensor; fcB: HostTensor; projW: HostTensor; projB: HostTensor };
}

export interface Gpt2Weights {
  wte: HostTensor; // [V, d]
  wpe: HostTensor; // [nCtx, d]
  layers: LayerWeights[];
  lnF?: { w: HostTensor; b: HostTensor };
  lmHead?: HostTensor; // [V, d] when untied
}

export function gpt2WeightsFromTensors(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): Gpt2Weights {
  const prefix = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const get = (key: string, shape: number[]): HostTensor => {
    const t = tensors.get(prefix + key) ?? tensors.get(key);
    if (!t) throw new CircuitryError(`${source}: missing tensor '${prefix}${key}' (expected shape [${shape}])`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new CircuitryError(`${source}: tensor '${prefix}${key}' has shape [${t.shape}], expected [${shape}] for this config`);
    }
    return t;
  };
  const { dModel: d, dMlp: dm, dVocab: V, nCtx } = cfg;
  const ln = (name: string) => (cfg.normalization === 'LN' ? { w: get(`${name}.weight`, [d]), b: get(`${name}.bias`, [d]) } : undefined);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `h.${l}`;
    layers.push({
      ln1: ln(`${p}.ln_1`),
      cAttn: { w: get(`${p}.attn.c_attn.weight`, [d, 3 * d]), b: get(`${p}.attn.c_attn.bias`, [3 * d]) },
      cProj: { w: get(`${p}.attn.c_proj.weight`, [d, d]), b: get(`${p}.attn.c_proj.bias`, [d]) },
      ln2: cfg.attnOnly ? undefined : ln(`${p}.ln_2`),
      mlp: cfg.attnOnly
        ? undefined
        : {
            fcW: get(`${p}.mlp.c_fc.weight`, [d, dm]),
            fcB: get(`${p}.mlp.c_fc.bias`, [dm]),
            projW: get(`${p}.mlp.c_proj.weight`, [dm, d]),
            projB: get(`${p}.mlp.c_proj.bias`, [d]),
          },
    });
  }
  const hasHead = tensors.has('lm_head.weight');
  if (!cfg.tiedEmbeddings && !hasHead) {
    throw new CircuitryError(`${source}: missing tensor 'lm_head.weight' (expected shape [${V},${d}]; config says tie_word_embeddings is false)`);
  }
  return {
    wte: get('wte.weight', [V, d]),
    wpe: get('wpe.weight', [nCtx, d]),
    layers,
    lnF: ln('ln_f'),
    lmHead: !cfg.tiedEmbeddings ? get('lm_head.weight', [V, d]) : undefined,
  };
}
