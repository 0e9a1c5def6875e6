import { CircuitryError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';
import { intField, numField, onePlus, optionalPositive } from './common.js';
import { llamaLikeConfig, llamaLikeWeights } from './llama.js';
import type { ArchAdapter } from './types.js';

/**
 * Gemma-2: the Llama block with RMSNorm gains (1 + w), a norm before and after both attention
 * and MLP, GeGLU (tanh GELU), embeddings times √d_model (rounded to float32, as transformers
 * holds it), attention scale query_pre_attn_scalar^(−1/2), soft-capped attention scores and
 * final logits, a sliding window on the layers `layer_types` marks (default: even layers), and
 * a tied unembedding.
 */
function extra(cfg: Record<string, unknown>, file: string, base: ModelConfig): Partial<ModelConfig> {
  const window = cfg.sliding_window == null ? null : intField(cfg, 'sliding_window', file);
  const types = Array.isArray(cfg.layer_types) ? cfg.layer_types : undefined;
  if (types && types.length !== base.nLayers) throw new CircuitryError(`${file}: layer_types has ${types.length} entries for ${base.nLayers} layers`);
  const sliding = (l: number) => (types ? types[l] === 'sliding_attention' : l % 2 === 0);
  return {
    postNorms: true,
    embedScale: Math.fround(Math.sqrt(base.dModel)),
    attnScale: 1 / Math.sqrt(numField(cfg, 'query_pre_attn_scalar', file, base.dHead)),
    attnSoftCap: optionalPositive(cfg, 'attn_logit_softcapping', file),
    finalSoftCap: optionalPositive(cfg, 'final_logit_softcapping', file),
    slidingWindows: Array.from({ length: base.nLayers }, (_, l) => (window !== null && sliding(l) ? window : null)),
    tiedEmbeddings: cfg.tie_word_embeddings !== false,
  };
}

export const gemma2: ArchAdapter = {
  family: 'gemma2',
  modelTypes: ['gemma2'],
  example: 'google/gemma-2-2b',
  config: (cfg, file) => llamaLikeConfig(cfg, file, { family: 'gemma2', actKey: 'hidden_activation', defaultAct: 'gelu_pytorch_tanh', defaultTheta: 10000, extra }),
  weights: (cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string) =>
    llamaLikeWeights(cfg, tensors, source, { qkvBias: false, oBias: false, mlpBias: false, normGain: onePlus, sandwichNorms: true }),
};
