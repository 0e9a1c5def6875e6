import { configFromHf } from './config.js';
import type { HostTensor } from './safetensors-bytes.js';
import { Transformer } from './transformer.js';
import { gpt2WeightsFromTensors } from './weights.js';

/**
 * A runnable model from a HuggingFace config object and its tensors, with no file access (the
 * browser builds the live report's model with it). `source` names where they came from in
 * error messages.
 */
export function modelFromTensors(config: unknown, tensors: ReadonlyMap<string, HostTensor>, source: string): Transformer {
  const cfg = configFromHf(config, source);
  return new Transformer(cfg, gpt2WeightsFromTensors(cfg, tensors, source));
}
