import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';

/**
 * The family-neutral description of a checkpoint's weights that the forward pass alone reads.
 * Every matrix is in the x·W layout ([in, out]); an adapter transposes nn.Linear weights
 * ([out, in]) and splits fused projections. Absent biases are absent (not zeros). Norm gains
 * are the effective ones (Gemma's (1 + w) is folded by its adapter). k/v projections have
 * cfg.nKvHeads heads; the Transformer ungroups them at load.
 */
export interface NormWeights {
  readonly w: HostTensor; // [d]
  readonly b?: HostTensor; // [d] (LayerNorm only)
}

export interface AttentionWeights {
  readonly wQ: HostTensor; // [d, H·dh], head h in columns h·dh …
  readonly wK: HostTensor; // [d, Hkv·dh]
  readonly wV: HostTensor; // [d, Hkv·dh]
  readonly bQ?: HostTensor; // [H·dh]
  readonly bK?: HostTensor; // [Hkv·dh]
  readonly bV?: HostTensor; // [Hkv·dh]
  readonly wO: HostTensor; // [H·dh, d]
  readonly bO?: HostTensor; // [d]
}

export interface MlpWeights {
  /** The linear branch (ungated: the only input projection). */
  readonly wIn: HostTensor; // [d, dm]
  readonly bIn?: HostTensor;
  /** The gate of a gated MLP (SwiGLU, GeGLU): act(x·W_gate) ⊙ (x·W_in). */
  readonly wGate?: HostTensor; // [d, dm]
  readonly bGate?: HostTensor;
  readonly wOut: HostTensor; // [dm, d]
  readonly bOut?: HostTensor;
}

export interface LayerWeights {
  readonly ln1?: NormWeights;
  readonly attn: AttentionWeights;
  /** Norm of the attention block's output before the residual add (cfg.postNorms). */
  readonly postAttnNorm?: NormWeights;
  readonly ln2?: NormWeights;
  readonly mlp?: MlpWeights;
  readonly postMlpNorm?: NormWeights;
}

export interface ModelWeights {
  readonly embed: HostTensor; // [V, d]
  readonly posEmbed?: HostTensor; // [nCtx, d] (learned positions only)
  readonly layers: readonly LayerWeights[];
  readonly lnF?: NormWeights;
  readonly unembed?: HostTensor; // [V, d] when untied
}

/** One model family: how its config.json and tensor names map onto the description. */
export interface ArchAdapter {
  /** The family's name (as `circuitry` prints it). */
  readonly family: string;
  /** The HF `model_type` values it reads. */
  readonly modelTypes: readonly string[];
  /** An example hub id, for messages and the README. */
  readonly example: string;
  config(raw: Record<string, unknown>, file: string): ModelConfig;
  weights(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): ModelWeights;
  /** The config.json of a resolved config, when the family can be saved. */
  toHf?(cfg: ModelConfig): Record<string, unknown>;
  /** Tensors in the family's checkpoint names from a description, when the family can be saved. */
  toTensors?(cfg: ModelConfig, weights: ModelWeights): Map<string, HostTensor>;
}
