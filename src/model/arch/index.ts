import { CircuitryError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';
import { Transformer } from '../transformer.js';
import { gemma2 } from './gemma2.js';
import { gpt2 } from './gpt2.js';
import { llama } from './llama.js';
import { neox } from './neox.js';
import { qwen2 } from './qwen2.js';
import type { ArchAdapter, ModelWeights } from './types.js';

export type { ArchAdapter, ModelWeights, LayerWeights, AttentionWeights, MlpWeights, NormWeights } from './types.js';

/** Every supported family; a new family is one adapter file and one entry here. */
export const ADAPTERS: readonly ArchAdapter[] = [gpt2, neox, llama, qwen2, gemma2];

/** The adapter that reads config.json's `model_type`; an unsupported type fails in one line. */
export function adapterFor(modelType: unknown, file: string): ArchAdapter {
  const found = ADAPTERS.find((a) => typeof modelType === 'string' && a.modelTypes.includes(modelType));
  if (found) return found;
  const supported = ADAPTERS.map((a) => `${a.family} (${a.modelTypes.map((t) => `"${t}"`).join(', ')})`).join(', ');
  throw new CircuitryError(`${file}: unsupported architecture (model_type ${JSON.stringify(modelType ?? null)}); supported families: ${supported}`);
}

export function adapterOfFamily(family: string): ArchAdapter {
  const found = ADAPTERS.find((a) => a.family === family);
  if (!found) throw new CircuitryError(`unknown model family '${family}' (known: ${ADAPTERS.map((a) => a.family).join(', ')})`);
  return found;
}

/** The family-neutral description of a checkpoint's tensors (names and shapes checked). */
export function weightsFromTensors(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): ModelWeights {
  return adapterOfFamily(cfg.family).weights(cfg, tensors, source);
}

/** A checkpoint's config and weights, checked (family, names, shapes), before any tfjs tensor exists. */
export function describeModel(config: unknown, tensors: ReadonlyMap<string, HostTensor>, source: string, opts: { file?: string } = {}): { cfg: ModelConfig; weights: ModelWeights } {
  const file = opts.file ?? `${source} (config.json)`;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new CircuitryError(`${file}: expected a JSON object`);
  const raw = config as Record<string, unknown>;
  const cfg = adapterFor(raw.model_type, file).config(raw, file);
  return { cfg, weights: weightsFromTensors(cfg, tensors, source) };
}

/**
 * The one construction point of a model from a config.json object and its tensors (any family).
 * Free of node:fs, so the browser bundle uses it too.
 */
export function modelFromTensors(config: unknown, tensors: ReadonlyMap<string, HostTensor>, source: string, opts: { trainable?: boolean; file?: string } = {}): Transformer {
  const { cfg, weights } = describeModel(config, tensors, source, opts);
  return new Transformer(cfg, weights, { trainable: opts.trainable });
}

/** A model's weights in its family's checkpoint names (for saving), with its config.json. */
export function checkpointOf(model: Transformer): { config: Record<string, unknown>; tensors: Map<string, HostTensor> } {
  const adapter = adapterOfFamily(model.cfg.family);
  if (!adapter.toHf || !adapter.toTensors) throw new CircuitryError(`saving a ${model.cfg.family} model is not supported yet`);
  return { config: adapter.toHf(model.cfg), tensors: adapter.toTensors(model.cfg, model.description()) };
}
