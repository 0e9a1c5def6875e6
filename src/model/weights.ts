import type { ModelConfig } from './config.js';
import type { HostTensor } from './safetensors.js';
import { weightsFromTensors } from './arch/index.js';
import type { ModelWeights } from './arch/types.js';

export type { ModelWeights, LayerWeights } from './arch/types.js';
/** @deprecated the description is family-neutral: ModelWeights. */
export type Gpt2Weights = ModelWeights;

/** The weights of any supported family (the name predates the other families). */
export function gpt2WeightsFromTensors(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): ModelWeights {
  return weightsFromTensors(cfg, tensors, source);
}
