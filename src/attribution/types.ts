import type { Transformer } from '../model/transformer.js';
import type { CircuitGraph } from '../graph/graph.js';
import type { MetricName } from '../metrics/index.js';
import type { Ablation, Direction, PairData, Patcher } from '../patching/patcher.js';

// the method names are the registry's keys (registry.ts), listed nowhere else
export type { AttributionMethodKey } from './registry.js';
import type { AttributionMethodKey } from './registry.js';

/**
 * How ∂M/∂x_d is obtained: `fused` (the model's fused forward, per-head input gradients rebuilt;
 * fastest), `split` (the runtime's split q/k/v hooks; hooks only), `mask` (minus the masked
 * engine's mask gradient, Patcher.maskGradient), or `auto` (fused when the model family allows).
 */
export const GRADIENT_CHOICES = ['auto', 'fused', 'split', 'mask'] as const;
export type GradientChoice = (typeof GRADIENT_CHOICES)[number];

/**
 * What an attribution runs on: an existing Patcher (its cached runs are reused, and its metric,
 * direction and ablation apply), or a model, graph and data (the algorithm runs only the passes it
 * needs).
 */
export type AttributionInput =
  | { readonly patcher: Patcher }
  | { readonly model: Transformer; readonly graph: CircuitGraph; readonly data: PairData };

export interface AttributionOptions {
  /** Required with a model input; a Patcher input uses the Patcher's (and a different one is an error). */
  readonly metric?: MetricName;
  /** noise (default): run clean, patch corrupted. denoise: the reverse. */
  readonly direction?: Direction;
  /** What a patched source carries (default patch: the other run's output). */
  readonly ablation?: Ablation;
  /** Integrated-gradient steps m (EAP-IG variants; default 5). */
  readonly steps?: number;
  /** Prompts per pass (default all, at most 32). */
  readonly batchSize?: number;
  /**
   * eap-ig: interpolation steps stacked into one pass's batch (default: as many as keep the
   * pass's autodiff tape near 256 MiB; 1 for GPT-2 small). Same scores, fewer passes.
   */
  readonly stepBatch?: number;
  /**
   * The most prompts per gradient pass (default: as many as keep a pass near 170 MB of tape and
   * gradients; GPT-2 small at 14 tokens: 4). A larger chunk runs in parts: the same scores up to
   * float rounding, a worker's wasm memory (which never shrinks) set by the smaller pass.
   */
  readonly passPrompts?: number;
  /**
   * eap-ig: where the m steps sit on the path from the patch input to the run's. `eap-ig`
   * (default): α = k/m, k = 0..m − 1, as EAP-IG's attribute.py (the same scores as EAP-IG).
   * `run`: α = k/m, k = 1..m (α = 1 is the run; m = 1 is EAP).
   */
  readonly interpolation?: 'run' | 'eap-ig';
  readonly gradient?: GradientChoice;
  /** Called after each pass: `done` of `total` passes. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Edge scores of one attribution run. Scores estimate M(run with the edge patched) − M(run). */
export interface EdgeAttribution {
  readonly method: AttributionMethodKey;
  readonly graph: CircuitGraph;
  /** Dense per-edge scores (graph.denseSize, 0 where no edge). */
  readonly scores: Float32Array;
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  /** Integrated-gradient steps (1 for EAP). */
  readonly steps: number;
  readonly gradient: Exclude<GradientChoice, 'auto'>;
  /** The metric on the run that is differentiated (clean when noising), dataset mean. */
  readonly baseMetric: number;
  /** The metric on the other run, when a pass computed it (corrupted when noising). */
  readonly patchedMetric?: number;
  readonly nExamples: number;
  /** Passes run (a forward+backward counts one of each). */
  readonly forwardPasses: number;
  readonly backwardPasses: number;
  readonly seconds: number;
  /** Things the user should know (e.g. KL's gradient vanishes at the clean run). */
  readonly warnings: readonly string[];
}
