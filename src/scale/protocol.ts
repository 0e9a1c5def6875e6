import type { GraphShape } from '../graph/graph.js';
import type { MetricName } from '../metrics/index.js';
import type { Ablation, Direction, PairData } from '../patching/patcher.js';
import type { SweepSpec } from '../patching/sweeps.js';
import type { AttributionOptions, EdgeAttribution } from '../attribution/types.js';
import type { CausalTraceOptions, CausalTraceResult } from '../interventions/causal-tracing.js';
import type { SignificanceTargets } from '../interventions/sweep-significance.js';

/**
 * What travels between the parent and a pool worker. Every task carries what the worker needs
 * to rebuild its state (the model reference, the shard's prompts, the patcher settings), so a
 * fresh worker that replaced a dead one runs it as well as the first; a worker caches what it
 * built, keyed by `model.key` and `shard.key`.
 */

/**
 * The weights: safetensors bytes in one SharedArrayBuffer (not copied per worker; once released,
 * their checkpoint folder `dir`, read with the same config), or a model name to load.
 */
export type ModelRef =
  | { readonly kind: 'shared'; readonly key: string; readonly config: unknown; readonly bytes?: SharedArrayBuffer; readonly dir?: string; readonly source: string }
  /** `hash`: the coordinator's weights hash (LoadedModel.source.hash); a worker that loads other weights refuses. */
  | { readonly kind: 'name'; readonly key: string; readonly name: string; readonly hash?: string };

/** One worker's share of a patcher: whole chunks of prompts, with the patcher's settings. */
export interface ShardSpec {
  readonly key: string;
  readonly graph: GraphShape;
  readonly data: PairData;
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  readonly batchSize: number;
  readonly stackBudget: number;
  readonly maxRows: number;
}

/** A mask as its entries that differ from the full mask (most masks patch few edges). */
export interface SparseMask {
  readonly index: Int32Array;
  readonly value: Float32Array;
}

export type WorkerTask =
  | { readonly kind: 'open'; readonly backend: string; readonly model: ModelRef; readonly shard: ShardSpec }
  /** `base`: the patcher's base mask (Patcher.setBaseMask), set again by a fresh worker from the task. */
  | { readonly kind: 'evaluate'; readonly backend: string; readonly model: ModelRef; readonly shard: ShardSpec; readonly masks: readonly SparseMask[]; readonly base?: { readonly key: string; readonly mask: SparseMask } }
  | { readonly kind: 'attribute'; readonly backend: string; readonly model: ModelRef; readonly shard: ShardSpec; readonly method: string; readonly steps?: number }
  | { readonly kind: 'sweep'; readonly backend: string; readonly model: ModelRef; readonly shard: ShardSpec; readonly sweep: SweepSpec; readonly positionLabels?: readonly string[] }
  | { readonly kind: 'attribute-data'; readonly backend: string; readonly model: ModelRef; readonly graph: GraphShape; readonly data: PairData; readonly method: string; readonly options: AttributionOptions }
  /** Every target's metric per example of the shard (`patch --significance`). */
  | { readonly kind: 'per-example'; readonly backend: string; readonly model: ModelRef; readonly shard: ShardSpec; readonly targets: SignificanceTargets }
  /** A share of a causal trace (CausalTraceOptions.share) of one prompt. */
  | { readonly kind: 'trace'; readonly backend: string; readonly model: ModelRef; readonly tokens: readonly number[]; readonly answer: readonly number[]; readonly options: Omit<CausalTraceOptions, 'onProgress'> }
  | { readonly kind: 'close'; readonly shard: string }
  /** Starts the worker's tfjs (pool warm-up). */
  | { readonly kind: 'noop' };

/**
 * `passes`: forward passes the task ran; `basePasses`: those of them that built the base mask's
 * runs (a worker that did not hold the shard builds them again: counted once per shard);
 * `masksPerPass`: the masks the shard's passes stack (Patcher.masksPerPass), sent on open.
 */
export type WorkerReply =
  | { readonly ok: true; readonly cachePasses?: number; readonly sizes?: number[]; readonly masksPerPass?: number; readonly clean?: number[]; readonly corrupted?: number[]; readonly values?: number[][]; readonly scores?: Float32Array; readonly passes?: number; readonly basePasses?: number; readonly attribution?: Omit<EdgeAttribution, 'graph'>; readonly trace?: CausalTraceResult; readonly perExample?: readonly Float64Array[]; readonly base?: Float64Array }
  | { readonly ok: false; readonly name: string; readonly message: string };
