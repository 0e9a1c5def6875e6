import { TAU_FALLS, TAU_KEPT, TAU_NONE, type ReportData } from '../types.js';

/**
 * The threshold control's semantics, free of DOM and WebGL so Node tests can check them.
 * Candidates are the saved circuit's edges, or every edge with "all edges" ticked.
 * Score mode draws |score| ≥ t. τ mode draws the edges ACDC has not yet removed at τ: an edge
 * falls once τ ≥ its acdc_tau; null (kept at every τ tried) never falls; an edge without ACDC
 * evidence is drawn when it is in the saved circuit.
 */

export type Mode = 'score' | 'tau';

export interface ThresholdState {
  mode: Mode;
  scopeAll: boolean;
  position: number;
  threshold: number;
  count: number;
  candidates: number;
}

const TOP_EXACT = 600;
const REST_STEPS = 400;

/**
 * Slider stops: the sorted distinct values. Above ~1000 of them, every value among the largest
 * 600 stays (circuits live in the heavy tail, one edge per step there) and the rest is thinned
 * to 400 quantiles; `keep` values (the current and the saved circuit's thresholds) always stay.
 */
function steps(values: number[], keep: number[] = []): number[] {
  const sorted = [...new Set([...values, ...keep])].sort((a, b) => a - b);
  if (sorted.length <= TOP_EXACT + REST_STEPS) return sorted;
  const cut = sorted.length - TOP_EXACT;
  const out = new Set<number>([...keep, ...sorted.slice(cut)]);
  for (let i = 0; i < REST_STEPS; i++) out.add(sorted[Math.round((i * (cut - 1)) / (REST_STEPS - 1))]);
  return [...out].sort((a, b) => a - b);
}

export class ThresholdModel {
  private readonly d: ReportData;
  private readonly absScore: Float64Array;

  constructor(d: ReportData) {
    this.d = d;
    this.absScore = Float64Array.from(d.edges.score, (s) => Math.abs(s ?? 0));
  }

  candidate(i: number, scopeAll: boolean): boolean {
    return scopeAll || this.d.edges.inGraph[i] === 1;
  }

  /** Slider stops (threshold values, ascending) for a mode and scope; `keep` values are always stops. */
  stops(mode: Mode, scopeAll: boolean, keep: number[] = []): number[] {
    const E = this.d.edges;
    const vals: number[] = [];
    if (mode === 'score') {
      for (let i = 0; i < E.name.length; i++) if (this.candidate(i, scopeAll)) vals.push(this.absScore[i]);
      return vals.length || keep.length ? steps(vals, keep) : [0];
    }
    for (let i = 0; i < E.name.length; i++) if (this.candidate(i, scopeAll) && E.tauState[i] === TAU_FALLS) vals.push(E.tau[i]!);
    return steps(vals, [0, ...(this.d.acdcTau !== null ? [this.d.acdcTau] : []), ...keep]);
  }

  /** Whether edge i is drawn at threshold t. Score: |score| ≥ t. τ: the edge has not fallen (it falls once τ ≥ its value). */
  passes(i: number, mode: Mode, t: number, scopeAll: boolean): boolean {
    if (!this.candidate(i, scopeAll)) return false;
    if (mode === 'score') return this.absScore[i] >= t;
    const s = this.d.edges.tauState[i];
    if (s === TAU_KEPT) return true;
    if (s === TAU_FALLS) return this.d.edges.tau[i]! > t;
    return s === TAU_NONE && this.d.edges.inGraph[i] === 1;
  }

  mask(mode: Mode, t: number, scopeAll: boolean): Uint8Array {
    const m = new Uint8Array(this.d.edges.name.length);
    for (let i = 0; i < m.length; i++) m[i] = this.passes(i, mode, t, scopeAll) ? 1 : 0;
    return m;
  }

  candidates(scopeAll: boolean): number {
    let n = 0;
    for (let i = 0; i < this.d.edges.name.length; i++) if (this.candidate(i, scopeAll)) n++;
    return n;
  }
}
