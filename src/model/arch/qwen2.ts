import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';
import { intField } from './common.js';
import { ACT_NAMES, llamaLikeConfig, llamaLikeHf, llamaLikeTensors, llamaLikeWeights } from './llama.js';
import type { ArchAdapter } from './types.js';

/**
 * Qwen2 / Qwen2.5: the Llama block with biases on q, k and v (none on o), RMSNorm eps 1e-6,
 * theta 1e6 by default; a sliding window on the layers `layer_types` marks (or, in older
 * configs, from max_window_layers on when use_sliding_window).
 */
function windows(cfg: Record<string, unknown>, file: string, nLayers: number): (number | null)[] {
  const w = cfg.sliding_window;
  const types = Array.isArray(cfg.layer_types) ? cfg.layer_types : undefined;
  const sliding = (l: number) =>
    types ? types[l] === 'sliding_attention' : cfg.use_sliding_window === true && l >= (typeof cfg.max_window_layers === 'number' ? cfg.max_window_layers : 0);
  return Array.from({ length: nLayers }, (_, l) => (sliding(l) && w != null ? intField(cfg, 'sliding_window', file) : null));
}

export const qwen2: ArchAdapter = {
  family: 'qwen2',
  modelTypes: ['qwen2'],
  example: 'Qwen/Qwen2.5-0.5B',
  config: (cfg, file) =>
    llamaLikeConfig(cfg, file, {
      family: 'qwen2',
      actKey: 'hidden_act',
      defaultAct: 'silu',
      defaultTheta: 1e6,
      extra: (raw, f, base) => ({ slidingWindows: windows(raw, f, base.nLayers) }),
    }),
  weights: (cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string) => llamaLikeWeights(cfg, tensors, source, { qkvBias: true, oBias: false, mlpBias: false }),
  toHf: (cfg) => ({ ...llamaLikeHf(cfg, 'qwen2', 'Qwen2ForCausalLM', ACT_NAMES[cfg.act]), use_sliding_window: false }),
  toTensors: (cfg, w) => llamaLikeTensors(cfg, w),
};
