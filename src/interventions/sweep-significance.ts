import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import type { CircuitGraph } from '../graph/graph.js';
import { type MetricName, MetricTargets, lastLogits, metricMean, recovery } from '../metrics/index.js';
import type { Ablation, Direction, PairData, Patcher } from '../patching/patcher.js';
import { PatchingEngine } from '../patching/engine.js';
import { type SweepComponent, type SweepOptions, type SweepResult, type SweepSpec, parseSweep, planSweep } from '../patching/sweeps.js';
import { evaluateEdges, evaluateSites, seqLenOf, sitesOfPlan, type SiteEvaluation, type SiteEvaluationOptions } from './sites.js';
import type { Site } from '../patching/stacked.js';
import type { ModelConfig } from '../model/config.js';
import { type ComponentSignificance, type ResolvedSignificanceOptions, type SignificanceOptions, resolveSignificanceOptions, significance } from './significance.js';
import { CircuitryError } from '../errors.js';

/** A sweep component with its statistics (the CI is of `delta`, the per-example effect's mean). */
export type SignificantComponent = SweepComponent & Omit<ComponentSignificance, 'mean'>;

/** What the significance of a result was computed with, for the JSON. */
export interface SignificanceSummary extends ResolvedSignificanceOptions {
  /** The effect tested per example: the patched metric minus the unpatched run's. */
  readonly effect: 'delta';
  readonly n_examples: number;
  readonly exact: boolean;
  readonly n_significant: number;
  readonly warnings: readonly string[];
}

export interface SignificantSweepResult extends Omit<SweepResult, 'components'> {
  readonly components: readonly SignificantComponent[];
  readonly significance: SignificanceSummary;
}

export interface SweepSignificanceOptions extends SweepOptions, SignificanceOptions {
  /**
   * Per-example effects smaller than this share of |clean − corrupted| count as exactly zero
   * (default 1e-5): float32 rounding makes a component that changes nothing differ from zero by
   * ~1e-7, consistently in sign, which a permutation test would otherwise call significant.
   */
  readonly noiseFloor?: number;
}

/**
 * runSweep with statistics: the same sweep (same components, metric, delta and recovery), with
 * each component's effect measured on every prompt of the dataset, and per component a
 * bootstrap confidence interval of delta, a p-value against zero effect and a q-value across
 * the sweep's components. One call for `patch --significance`.
 */
export function sweepWithSignificance(patcher: Patcher, spec: SweepSpec | string, opts: SweepSignificanceOptions = {}): SignificantSweepResult {
  resolveSignificanceOptions(opts); // bad options fail before any pass
  const layout = significanceLayout(patcher.graph, patcher.engine.model.cfg, seqLenOf(patcher), spec, opts.positionLabels);
  return significantSweep(patcher, layout, evaluateTargets(patcher, layout.targets, opts), opts);
}

/** What a significance sweep patches: every edge alone, or each site of a planned sweep. */
export type SignificanceTargets = { readonly kind: 'edges'; readonly edges: readonly string[] } | { readonly kind: 'sites'; readonly sites: readonly Site[] };

/** A sweep's cells and what to patch for them (checked against the model). */
export interface SignificanceLayout {
  readonly kind: string;
  readonly rows: readonly string[];
  readonly cols: readonly string[];
  readonly cells: readonly { readonly name: string; readonly row: number; readonly col: number }[];
  readonly targets: SignificanceTargets;
}

export function significanceLayout(graph: CircuitGraph, cfg: ModelConfig, seqLen: number, spec: SweepSpec | string, positionLabels?: readonly string[]): SignificanceLayout {
  const s = typeof spec === 'string' ? parseSweep(spec) : spec;
  if (s.kind === 'edges') {
    return {
      kind: 'edges',
      rows: graph.destinations.map((d) => d.name),
      cols: graph.sources.map((x) => x.name),
      cells: graph.edges.map((e) => ({ name: e.name, row: e.dst, col: e.src })),
      targets: { kind: 'edges', edges: graph.edges.map((e) => e.name) },
    };
  }
  const plan = planSweep(s, cfg, seqLen, positionLabels);
  return { kind: plan.kind, rows: plan.rows, cols: plan.cols, cells: plan.components.map((c) => ({ name: c.name, row: c.row, col: c.col })), targets: { kind: 'sites', sites: sitesOfPlan(plan.components) } };
}

/** Every target's metric on every example of the patcher's chunks (dataset order). */
export function evaluateTargets(patcher: Patcher, targets: SignificanceTargets, opts: SiteEvaluationOptions = {}): SiteEvaluation {
  return targets.kind === 'edges' ? evaluateEdges(patcher, targets.edges, opts) : evaluateSites(patcher, targets.sites, opts);
}

/**
 * The statistics of a sweep from its per-example evaluation (evaluated in-process, or by pool
 * workers on their chunks and concatenated in dataset order: the same numbers).
 */
export function significantSweep(
  patcher: Pick<Patcher, 'metric' | 'direction' | 'ablation' | 'cleanMetric' | 'corruptedMetric' | 'baseMetric'>,
  layout: SignificanceLayout,
  evaluation: SiteEvaluation,
  opts: SweepSignificanceOptions = {},
): SignificantSweepResult {
  const sig = resolveSignificanceOptions(opts);
  const { kind, rows, cols, cells } = layout;
  const floor = noiseFloor(opts.noiseFloor, patcher.cleanMetric - patcher.corruptedMetric);
  const effects = evaluation.perExample.map((values) => values.map((v, i) => snap(v - evaluation.base[i], floor)));
  const stats = significance(effects, sig);
  const components = cells.map((c, i) => {
    const m = evaluation.mean[i];
    const st = stats.components[i];
    return {
      ...c,
      metric: m,
      delta: m - patcher.baseMetric,
      recovery: recovery(m, patcher.cleanMetric, patcher.corruptedMetric),
      ci_low: st.ci_low,
      ci_high: st.ci_high,
      p: st.p,
      q: st.q,
      significant: st.significant,
    };
  });
  return {
    kind,
    direction: patcher.direction,
    metric: patcher.metric,
    ablation: patcher.ablation,
    clean: patcher.cleanMetric,
    corrupted: patcher.corruptedMetric,
    rows,
    cols,
    components,
    forwardPasses: evaluation.forwardPasses,
    cachePasses: evaluation.cachePasses,
    significance: summary(stats, sig),
  };
}

function noiseFloor(share: number | undefined, span: number): number {
  const f = share ?? 1e-5;
  if (!(typeof f === 'number' && f >= 0 && Number.isFinite(f))) throw new CircuitryError(`significance: noiseFloor must be a non-negative number, got ${String(share)}`);
  return f * (Math.abs(span) || 1);
}

function snap(x: number, floor: number): number {
  return Math.abs(x) <= floor ? 0 : x;
}

function summary(stats: ReturnType<typeof significance>, o: ResolvedSignificanceOptions): SignificanceSummary {
  return { ...o, effect: 'delta', n_examples: stats.nExamples, exact: stats.exact, n_significant: stats.nSignificant, warnings: stats.warnings };
}

export interface AttributionSignificanceOptions extends SignificanceOptions {
  readonly metric: MetricName;
  readonly direction?: Direction;
  readonly ablation?: Ablation;
  /** `eap` (default) or `eap-ig-activations` (mask gradients averaged over mask values k/steps). */
  readonly method?: 'eap' | 'eap-ig-activations';
  readonly steps?: number;
  /** As in SweepSignificanceOptions (share of |clean − corrupted|; default 1e-5). */
  readonly noiseFloor?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface EdgeSignificance {
  readonly method: 'eap' | 'eap-ig-activations';
  /** Edge names in the graph's canonical order. */
  readonly edges: readonly string[];
  /** Per edge: the score (mean over examples) and its statistics. */
  readonly components: readonly ComponentSignificance[];
  readonly significance: SignificanceSummary;
  readonly forwardPasses: number;
  readonly backwardPasses: number;
}

/**
 * Significance of edge attribution scores. Scores are computed here per example — the mask
 * gradient of one prompt at a time through the patching engine (EAP's score is minus the
 * gradient of the metric with respect to the edge masks at m = 1; the IG variant on
 * activations averages it over m = k/steps) — so their mean over examples is the batch score,
 * and each edge gets a bootstrap CI, a p-value and a q-value across all edges. One call for
 * `attribute --significance`. (EAP-IG on input embeddings is not supported here.)
 */
export function edgeAttributionSignificance(
  input: { readonly model: Transformer; readonly graph: CircuitGraph; readonly data: PairData },
  opts: AttributionSignificanceOptions,
): EdgeSignificance {
  const sig = resolveSignificanceOptions(opts);
  const method = opts.method ?? 'eap';
  if (method !== 'eap' && method !== 'eap-ig-activations') {
    throw new CircuitryError(`attribution significance: method '${String(method)}' is not supported (expected eap or eap-ig-activations)`);
  }
  const steps = method === 'eap' ? 1 : (opts.steps ?? 5);
  if (!Number.isInteger(steps) || steps < 1) throw new CircuitryError(`attribution significance: steps must be a positive integer, got ${String(opts.steps)}`);
  if (opts.metric === 'accuracy') throw new CircuitryError('attribution significance: accuracy has zero gradient everywhere; use logit-diff, prob, logprob or kl');
  const { model, graph, data } = input;
  const metric = opts.metric;
  const direction = opts.direction ?? 'noise';
  const ablation = opts.ablation ?? 'patch';
  if (direction !== 'noise' && direction !== 'denoise') throw new CircuitryError(`attribution significance: direction must be noise or denoise, got '${String(direction)}'`);
  if (ablation !== 'patch' && ablation !== 'zero' && ablation !== 'mean') throw new CircuitryError(`attribution significance: ablation must be patch, zero or mean, got '${String(ablation)}'`);
  const n = data.clean.length;
  if (n === 0) throw new CircuitryError('attribution significance: the dataset has no examples');
  if (data.corrupted.length !== n || data.answers.length !== n || data.wrongs.length !== n) throw new CircuitryError('attribution significance: clean, corrupted, answers and wrongs must have one entry per example');
  data.clean.forEach((row, i) => {
    if (row.length !== data.corrupted[i].length || row.length !== data.clean[0].length) {
      throw new CircuitryError(`attribution significance: example ${i} has ${row.length} clean and ${data.corrupted[i].length} corrupted tokens; every prompt needs the dataset's one length ${data.clean[0].length}`);
    }
  });
  // One prompt at a time through the patching engine: each mask gradient is one example's.
  const engine = new PatchingEngine(model, graph);
  const cacheOf = (row: readonly number[]) => {
    const t = model.tokens([row]);
    try {
      return engine.cacheRun(t);
    } finally {
      t.dispose();
    }
  };
  const runRows = direction === 'noise' ? data.clean : data.corrupted;
  const otherRows = direction === 'noise' ? data.corrupted : data.clean;
  const edges = graph.edges;
  const raw = edges.map(() => new Float64Array(n));
  let forwardPasses = 0;
  let backwardPasses = 0;
  let span = 0;
  let meanSources: tf.Tensor | undefined;
  const full = tf.tensor3d(graph.denseEdgeArray(1), [1, graph.nDst, graph.nSrc]);
  try {
    if (ablation === 'mean') {
      for (const row of otherRows) {
        const c = cacheOf(row);
        forwardPasses++;
        const prev = meanSources;
        meanSources = tf.tidy(() => (prev ? tf.add(prev, tf.div(c.sources, n)) : tf.div(c.sources, n)));
        prev?.dispose();
        c.dispose();
      }
    }
    const total = n * steps;
    opts.onProgress?.(0, total);
    for (let b = 0; b < n; b++) {
      const run = cacheOf(runRows[b]);
      const other = cacheOf(otherRows[b]);
      forwardPasses += 2;
      const cleanLast = tf.tidy(() => lastLogits(direction === 'noise' ? run.logits : other.logits));
      const targets = new MetricTargets([data.answers[b]], [data.wrongs[b]], model.cfg.dVocab, cleanLast);
      cleanLast.dispose();
      const patch = ablation === 'patch' ? other.sources : ablation === 'zero' ? tf.zerosLike(run.sources) : meanSources!;
      try {
        const m = tf.tidy(() => tf.stack([metricMean(metric, run.logits, targets), metricMean(metric, other.logits, targets)]));
        const [mRun, mOther] = m.dataSync();
        m.dispose();
        span += (direction === 'noise' ? mRun - mOther : mOther - mRun) / n;
        const acc = new Float64Array(graph.denseSize);
        for (let k = 1; k <= steps; k++) {
          const scale = method === 'eap' ? 1 : k / steps;
          const maskT = tf.tidy(() => tf.mul(full, scale));
          const f = (mt: tf.Tensor) => metricMean(metric, engine.maskedForward({ run, patch, masks: mt }), targets);
          const { value, grad } = tf.valueAndGrad(f)(maskT);
          const gd = grad.dataSync();
          for (let i = 0; i < acc.length; i++) acc[i] += gd[i];
          tf.dispose([maskT, value, grad]);
          forwardPasses++;
          backwardPasses++;
          opts.onProgress?.(b * steps + k, total);
        }
        edges.forEach((e, i) => (raw[i][b] = -acc[e.index] / steps));
      } finally {
        if (ablation === 'zero') patch.dispose();
        run.dispose();
        other.dispose();
        targets.dispose();
      }
    }
  } finally {
    full.dispose();
    meanSources?.dispose();
    engine.dispose();
  }
  const floor = noiseFloor(opts.noiseFloor, span);
  const effects = raw.map((row) => row.map((x) => snap(x, floor)));
  const stats = significance(effects, sig);
  return {
    method,
    edges: edges.map((e) => e.name),
    components: stats.components,
    significance: summary(stats, sig),
    forwardPasses,
    backwardPasses,
  };
}
