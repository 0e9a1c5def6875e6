import type { MaskEvaluator, Patcher } from '../patching/patcher.js';
import type { CircuitGraph } from '../graph/graph.js';
import type { EdgeEvidence, FaithfulnessCurve } from '../graph/circuit-types.js';

/** MIB's edge budgets, in percent of the graph's edges. */
export const FAITHFULNESS_PERCENTS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100] as const;

export interface CircuitMetrics {
  /** The metric of the full model, of the empty circuit (every edge patched) and of the circuit. */
  full: number;
  empty: number;
  circuit: number;
  /** (circuit − empty) / (full − empty): 1 = the circuit does all the full model does. */
  normalized: number;
}

/** A dense mask keeping exactly the named edges. */
export function maskOf(patcher: Pick<MaskEvaluator, 'graph'>, edges: Iterable<string>): Float32Array {
  const g = patcher.graph;
  const m = new Float32Array(g.denseSize);
  for (const name of edges) m[g.edge(name).index] = 1;
  return m;
}

export function circuitMetrics(patcher: Patcher, mask: Float32Array): CircuitMetrics {
  const [circuit, empty] = patcher.evaluate([mask, new Float32Array(patcher.graph.denseSize)]);
  return metricsOf(patcher, circuit, empty);
}

/** circuitMetrics on any mask evaluator (a worker pool too): the same numbers. */
export async function circuitMetricsAsync(patcher: MaskEvaluator, mask: Float32Array): Promise<CircuitMetrics> {
  const [circuit, empty] = await patcher.evaluateAsync([mask, new Float32Array(patcher.graph.denseSize)]);
  return metricsOf(patcher, circuit, empty);
}

function metricsOf(patcher: MaskEvaluator, circuit: number, empty: number): CircuitMetrics {
  const full = patcher.baseMetric;
  return { full, empty, circuit, normalized: (circuit - empty) / (full - empty) };
}

/**
 * The faithfulness curve over circuit size (MIB): for each budget k, the circuit of the k% edges
 * with the highest |score| and f = (m(C) − m(∅)) / (m(N) − m(∅)). CPR is the area under f and CMD
 * the area under |1 − f|, both by the trapezoid rule over the fraction of edges (0 to 1).
 */
export function faithfulnessCurve(patcher: Patcher, scores: ArrayLike<number>, percents: readonly number[] = FAITHFULNESS_PERCENTS): FaithfulnessCurve {
  const { masks, sizes } = curveMasks(patcher, scores, percents);
  const values = patcher.evaluate([...masks, new Float32Array(patcher.graph.denseSize)]);
  const empty = values.pop()!;
  return curveOf(patcher, percents, sizes, values, empty);
}

/**
 * circuitMetrics and (with `rank`) faithfulnessCurve in one batched evaluation that yields to
 * the event loop after every pass and throws InterruptedError when `signal` fires. Same values.
 */
export async function evaluateCircuit(
  patcher: MaskEvaluator,
  mask: Float32Array,
  opts: { rank?: ArrayLike<number>; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ metrics: CircuitMetrics; faithfulness?: FaithfulnessCurve }> {
  const curve = opts.rank ? curveMasks(patcher, opts.rank, FAITHFULNESS_PERCENTS) : undefined;
  const empty = new Float32Array(patcher.graph.denseSize);
  const values = await patcher.evaluateAsync([mask, empty, ...(curve?.masks ?? [])], { signal: opts.signal, onProgress: opts.onProgress });
  const [circuit, emptyValue, ...points] = values;
  return {
    metrics: metricsOf(patcher, circuit, emptyValue),
    faithfulness: curve ? curveOf(patcher, FAITHFULNESS_PERCENTS, curve.sizes, points, emptyValue) : undefined,
  };
}

function curveMasks(patcher: MaskEvaluator, scores: ArrayLike<number>, percents: readonly number[]): { masks: Float32Array[]; sizes: number[] } {
  const edges = patcher.graph.edges;
  const ranked = [...edges].sort((a, b) => Math.abs(scores[b.index] || 0) - Math.abs(scores[a.index] || 0));
  const sizes = percents.map((p) => Math.max(0, Math.min(edges.length, Math.round((p / 100) * edges.length))));
  const masks = sizes.map((n) => {
    const m = new Float32Array(patcher.graph.denseSize);
    for (let i = 0; i < n; i++) m[ranked[i].index] = 1;
    return m;
  });
  return { masks, sizes };
}

function curveOf(patcher: MaskEvaluator, percents: readonly number[], sizes: readonly number[], values: readonly number[], empty: number): FaithfulnessCurve {
  const full = patcher.baseMetric;
  const points = percents.map((p, i) => ({ fraction: p / 100, n_edges: sizes[i], faithfulness: (values[i] - empty) / (full - empty) }));
  const xs = [0, ...points.map((p) => p.fraction)];
  const f = [0, ...points.map((p) => p.faithfulness)];
  let cpr = 0;
  let cmd = 0;
  for (let i = 1; i < xs.length; i++) {
    const w = xs[i] - xs[i - 1];
    cpr += (w * (f[i] + f[i - 1])) / 2;
    cmd += (w * (Math.abs(1 - f[i]) + Math.abs(1 - f[i - 1]))) / 2;
  }
  return { points, cpr, cmd };
}

/** Area under the ROC curve of `scores` (higher = more likely in the circuit) against the truth. */
export function rocAuc(scores: readonly number[], truth: readonly boolean[]): number {
  const items = scores.map((s, i) => ({ s, t: truth[i] }));
  const pos = items.filter((x) => x.t).length;
  const neg = items.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  // Mann–Whitney U with ties counted half
  items.sort((a, b) => a.s - b.s);
  let rankSumPos = 0;
  for (let i = 0; i < items.length; ) {
    let j = i;
    while (j < items.length && items[j].s === items[i].s) j++;
    const avgRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (items[k].t) rankSumPos += avgRank;
    i = j;
  }
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function precisionRecall(found: Iterable<string>, truth: Iterable<string>): { precision: number; recall: number; f1: number } {
  const f = new Set(found);
  const t = new Set(truth);
  let tp = 0;
  for (const e of f) if (t.has(e)) tp++;
  const precision = f.size ? tp / f.size : t.size ? 0 : 1;
  const recall = t.size ? tp / t.size : 1;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
}

/**
 * The pipeline's ranking of edges from their evidence (meta.edge_evidence), highest first: the
 * circuit's edges (+3), then edges ACDC decided (2 + |ACDC delta| / the largest), then verified
 * candidates (1 + their real effect as a share of |clean − corrupted|, at most 1), then the rest by
 * |attribution| / the largest. The faithfulness curve and ROC AUC of a pipeline circuit use it;
 * `circuitry evaluate` rebuilds it from the file to reproduce them.
 */
export function evidenceRank(graph: CircuitGraph, evidence: Readonly<Record<string, EdgeEvidence & { verified_denoise?: number }>>, inCircuit: ReadonlySet<string>, gap: number): Float64Array {
  const rank = new Float64Array(graph.denseSize);
  const abs = (x: number | null | undefined) => Math.abs(typeof x === 'number' && Number.isFinite(x) ? x : 0);
  let maxAttr = 1e-30;
  let maxDelta = 1e-30;
  for (const e of graph.edges) {
    const ev = evidence[e.name];
    maxAttr = Math.max(maxAttr, abs(ev?.attribution));
    if (typeof ev?.acdc_delta === 'number') maxDelta = Math.max(maxDelta, abs(ev.acdc_delta));
  }
  for (const e of graph.edges) {
    const ev = evidence[e.name] ?? {};
    let r = abs(ev.attribution) / maxAttr; // [0, 1]
    if (typeof ev.verified === 'number') r = 1 + Math.min(1, Math.max(abs(ev.verified), abs(ev.verified_denoise)) / Math.max(1e-30, Math.abs(gap)));
    if (typeof ev.acdc_delta === 'number') r = 2 + abs(ev.acdc_delta) / maxDelta;
    if (inCircuit.has(e.name)) r += 3;
    rank[e.index] = r;
  }
  return rank;
}
