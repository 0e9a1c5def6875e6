import { CircuitryError } from '../errors.js';
import { adapterFor, adapterOfFamily } from './arch/index.js';

/**
 * The resolved configuration of a model, family-neutral: every architectural choice is a field
 * that the forward pass reads, and only the family's adapter (src/model/arch/) sets it.
 */
export interface ModelConfig {
  /** The adapter that read it ('gpt2', 'neox', 'llama', 'qwen2', 'gemma2'); the forward never reads it. */
  readonly family: string;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Key/value heads of the checkpoint (grouped-query attention when < nHeads); the forward ungroups them. */
  readonly nKvHeads: number;
  readonly dModel: number;
  readonly dHead: number;
  readonly dMlp: number; // 0 for attention-only models
  readonly dVocab: number;
  readonly nCtx: number;
  /** The MLP's activation (of the gate for a gated MLP): gelu_new = tanh approximation. */
  readonly act: 'gelu_new' | 'gelu' | 'relu' | 'silu';
  /** act(x·W_gate) ⊙ (x·W_in) (SwiGLU, GeGLU) instead of act(x·W_in). */
  readonly gatedMlp: boolean;
  readonly normalization: 'LN' | 'RMS' | 'none';
  readonly attnOnly: boolean;
  readonly tiedEmbeddings: boolean;
  /** eps of every norm. */
  readonly lnEps: number;
  readonly positional: 'learned' | 'rotary';
  /** Rotary: dimensions rotated at the start of each head (rotate-half pairing), 0 for learned positions. */
  readonly rotaryDim: number;
  /** Rotary: the base theta (informative; rotaryInvFreq is what the forward uses). */
  readonly rotaryBase: number;
  /** Rotary: inverse frequencies, rotaryDim / 2 of them (any rope scaling applied). */
  readonly rotaryInvFreq: readonly number[];
  /** Attention and MLP both read the block input (GPT-NeoX use_parallel_residual). */
  readonly parallelAttnMlp: boolean;
  /** A norm after the attention block and after the MLP, before their residual adds (Gemma-2). */
  readonly postNorms: boolean;
  /** The embedding is multiplied by this (Gemma: √d_model) before it enters the residual stream. */
  readonly embedScale: number;
  /** Attention scores are q·k times this (1/√d_head unless the family says otherwise). */
  readonly attnScale: number;
  /** cap·tanh(s/cap) on the scaled attention scores, before the mask; null for none. */
  readonly attnSoftCap: number | null;
  /** cap·tanh(logits/cap) on the final logits; null for none. */
  readonly finalSoftCap: number | null;
  /** Per layer: query i sees keys i − w < j ≤ i, or null for full causal attention. */
  readonly slidingWindows: readonly (number | null)[];
}

/**
 * Reads a HuggingFace `config.json` object through the adapter of its `model_type`. circuitry's
 * own GPT-2 extensions (zoo models) are `attn_only: true` and `normalization: "none"`.
 */
export function configFromHf(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CircuitryError(`${file}: expected a JSON object`);
  }
  const cfg = raw as Record<string, unknown>;
  return adapterFor(cfg.model_type, file).config(cfg, file);
}

/** The HF config.json object for a resolved config (used when saving zoo and trained models). */
export function configToHf(cfg: ModelConfig): Record<string, unknown> {
  const adapter = adapterOfFamily(cfg.family);
  if (!adapter.toHf) throw new CircuitryError(`saving a ${cfg.family} config is not supported`);
  return adapter.toHf(cfg);
}
