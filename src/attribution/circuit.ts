import * as tf from '@tensorflow/tfjs';
import { CircuitryError } from '../errors.js';
import { createCircuit, greedy, pruneDisconnected, threshold, topN } from '../graph/index.js';
import type { Circuit, CircuitMeta } from '../graph/index.js';
import type { EdgeAttribution } from './types.js';

/**
 * Attribution scores as a circuit (the EAP-IG / MIB circuit file): every edge carries its score;
 * in_graph comes from the selection EAP-IG users know: the top n edges by |score|, an absolute
 * threshold, or greedy growth from the logits (top n reachable), optionally followed by pruning
 * edges that no longer connect input to logits. Without a selection no edge is in the graph.
 */
export interface SelectionOptions {
  readonly top?: number;
  readonly threshold?: number;
  /** With `top`: EAP-IG's greedy search from the logits instead of the global top n. */
  readonly greedy?: boolean;
  /** Drop in-graph edges not on an input → logits path. */
  readonly prune?: boolean;
  /** Rank by signed score instead of |score| (default false). */
  readonly signed?: boolean;
}

export function checkSelection(sel: SelectionOptions, nEdges?: number): void {
  if (sel.top !== undefined && sel.threshold !== undefined) throw new CircuitryError('--top and --threshold: give one of them, not both');
  if (sel.top !== undefined && !(Number.isInteger(sel.top) && sel.top >= 0)) throw new CircuitryError(`--top: expected a non-negative integer, got ${String(sel.top)}`);
  if (sel.top !== undefined && nEdges !== undefined && sel.top > nEdges) throw new CircuitryError(`--top: ${sel.top} is more than the ${nEdges} edges of the graph`);
  if (sel.threshold !== undefined && !Number.isFinite(sel.threshold)) throw new CircuitryError(`--threshold: expected a number, got ${String(sel.threshold)}`);
  if (sel.greedy && sel.top === undefined) throw new CircuitryError('--greedy: needs --top N (greedy growth takes a number of edges)');
}

export function attributionCircuit(result: EdgeAttribution, sel: SelectionOptions = {}, extra: { dModel?: number; nodeScores?: ArrayLike<number> } = {}): Circuit {
  checkSelection(sel, result.graph.nEdges);
  const base = createCircuit(result.graph, { scores: result.scores, ...(extra.nodeScores ? { nodeScores: extra.nodeScores } : {}), ...(extra.dModel ? { dModel: extra.dModel } : {}) });
  const opts = { absolute: !sel.signed, prune: sel.prune };
  if (sel.top !== undefined) return sel.greedy ? greedy(base, sel.top, opts) : topN(base, sel.top, opts);
  if (sel.threshold !== undefined) return threshold(base, sel.threshold, opts);
  return sel.prune ? pruneDisconnected(base) : base;
}

export interface AttributionProvenance {
  readonly backend?: string;
  readonly model?: CircuitMeta['model'];
  readonly dataset?: CircuitMeta['dataset'];
  readonly task?: string;
  readonly tool?: CircuitMeta['tool'];
  readonly versions?: Record<string, string>;
  readonly created?: string;
  /** Seconds per stage besides the attribution itself (load, …). */
  readonly timings?: Record<string, number>;
  readonly selection?: SelectionOptions;
  readonly batchSize?: number;
}

/** The circuit file's `meta` for an attribution run. */
export function attributionMeta(result: EdgeAttribution, prov: AttributionProvenance = {}): CircuitMeta {
  const noise = result.direction === 'noise';
  const clean = noise ? result.baseMetric : result.patchedMetric;
  const corrupted = noise ? result.patchedMetric : result.baseMetric;
  const sel = prov.selection ?? {};
  return {
    ...(prov.tool ? { tool: prov.tool } : {}),
    created: prov.created ?? new Date().toISOString(),
    ...(prov.backend ? { backend: prov.backend } : {}),
    ...(prov.model ? { model: prov.model } : {}),
    ...(prov.dataset ? { dataset: prov.dataset } : {}),
    ...(prov.task ? { task: prov.task } : {}),
    method: result.method,
    metric: result.metric,
    direction: result.direction,
    config: {
      method: result.method,
      steps: result.steps,
      ablation: result.ablation,
      gradient: result.gradient,
      ...(prov.batchSize !== undefined ? { batch_size: prov.batchSize } : {}),
      selection: {
        top: sel.top ?? null,
        threshold: sel.threshold ?? null,
        greedy: sel.greedy ?? false,
        prune: sel.prune ?? false,
        rank: sel.signed ? 'signed' : 'absolute',
      },
      score: 'sum over batch mean, positions and d_model of (a_u(patch) - a_u(run)) * dM/dx_d; estimates M(edge patched) - M(run)',
    },
    versions: prov.versions ?? { tfjs: tf.version.tfjs },
    timings: { ...(prov.timings ?? {}), attribute: result.seconds },
    metrics: {
      ...(clean !== undefined && result.ablation === 'patch' ? { clean } : noise ? { clean } : {}),
      ...(corrupted !== undefined && (result.ablation === 'patch' || !noise) ? { corrupted } : {}),
    },
    passes: { forward: result.forwardPasses, backward: result.backwardPasses },
    n_examples: result.nExamples,
    ...(result.warnings.length ? { warnings: [...result.warnings] } : {}),
  };
}
