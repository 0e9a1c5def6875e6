import * as tf from '@tensorflow/tfjs';
import { CircuitryError } from '../errors.js';
import { SeededRandom } from './rng.js';

/**
 * Statistical significance of per-component effects measured on every prompt of a dataset.
 *
 * For each component (a row of `effects`, one value per example):
 *  - the effect is the mean over examples; its confidence interval is the percentile bootstrap
 *    of that mean (examples resampled with replacement, seeded);
 *  - the p-value tests "no effect" two-sided. Default `sign-flip`: a permutation test under the
 *    null that each example's effect is symmetric about zero (its sign is a coin flip); the
 *    statistic is |mean|, p = (1 + #{resamples with |mean| ≥ observed}) / (1 + resamples), or
 *    the exact fraction over all 2^n sign patterns when 2^n ≤ resamples. Option `bootstrap`:
 *    the percentile-bootstrap test, p = 2·min(P*(mean ≤ 0), P*(mean ≥ 0)) with the +1 correction;
 *  - q-values correct for testing every component: Benjamini–Hochberg (false discovery rate,
 *    default), Bonferroni (family-wise error rate) or none; a component is significant when
 *    q ≤ alpha.
 *
 * Every component sees the same resamples (same sign patterns, same bootstrap draws), so the
 * result depends only on the effects, the options and the seed.
 */

export const CORRECTIONS = ['bh', 'bonferroni', 'none'] as const;
export type Correction = (typeof CORRECTIONS)[number];
export const SIGNIFICANCE_TESTS = ['sign-flip', 'bootstrap'] as const;
export type SignificanceTest = (typeof SIGNIFICANCE_TESTS)[number];

export interface SignificanceOptions {
  /**
   * How resampled means are computed: `js` (float64 loops) or `tensor` (float32 matrix products
   * on the tfjs backend, blocked over components; same resamples, results equal to ~1e-6);
   * default `js` for small problems and `tensor` above 10^6 multiply-adds.
   */
  readonly engine?: 'js' | 'tensor';
  /** Bootstrap and permutation resamples (default 10,000). */
  readonly resamples?: number;
  readonly seed?: number;
  /** Level at which q-values are called significant (default 0.05). */
  readonly alpha?: number;
  readonly correction?: Correction;
  readonly test?: SignificanceTest;
  /** Confidence level of the intervals (default 0.95). */
  readonly confidence?: number;
}

export interface ResolvedSignificanceOptions {
  readonly resamples: number;
  readonly seed: number;
  readonly alpha: number;
  readonly correction: Correction;
  readonly test: SignificanceTest;
  readonly confidence: number;
}

/** One component's statistics; the field names are those written to JSON. */
export interface ComponentSignificance {
  /** Mean effect over examples. */
  readonly mean: number;
  readonly ci_low: number;
  readonly ci_high: number;
  /** Unadjusted two-sided p-value against zero effect. */
  readonly p: number;
  /** p adjusted by the correction (BH q-value, Bonferroni-adjusted p, or p). */
  readonly q: number;
  readonly significant: boolean;
}

export interface SignificanceResult {
  readonly options: ResolvedSignificanceOptions;
  readonly nExamples: number;
  /** Whether the sign-flip p-values enumerate every sign pattern (2^n ≤ resamples). */
  readonly exact: boolean;
  readonly components: readonly ComponentSignificance[];
  readonly nSignificant: number;
  /** Things the user should know (e.g. too few resamples for the correction to pass anything). */
  readonly warnings: readonly string[];
}

/** Validates options once and fills in the defaults. `where` names the flag group in messages. */
export function resolveSignificanceOptions(opts: SignificanceOptions = {}, where = 'significance'): ResolvedSignificanceOptions {
  const resamples = opts.resamples ?? 10_000;
  if (!Number.isInteger(resamples) || resamples < 1 || resamples > 10_000_000) {
    throw new CircuitryError(`${where}: resamples must be an integer from 1 to 10,000,000, got ${String(resamples)}`);
  }
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new CircuitryError(`${where}: seed must be an integer, got ${String(seed)}`);
  const alpha = opts.alpha ?? 0.05;
  if (!(typeof alpha === 'number' && alpha > 0 && alpha < 1)) throw new CircuitryError(`${where}: alpha must be a number strictly between 0 and 1, got ${String(alpha)}`);
  const confidence = opts.confidence ?? 0.95;
  if (!(typeof confidence === 'number' && confidence > 0 && confidence < 1)) {
    throw new CircuitryError(`${where}: confidence must be a number strictly between 0 and 1, got ${String(confidence)}`);
  }
  const correction = opts.correction ?? 'bh';
  if (!(CORRECTIONS as readonly string[]).includes(correction)) {
    throw new CircuitryError(`${where}: unknown correction '${String(correction)}' (expected one of ${CORRECTIONS.join(', ')})`);
  }
  const test = opts.test ?? 'sign-flip';
  if (!(SIGNIFICANCE_TESTS as readonly string[]).includes(test)) {
    throw new CircuitryError(`${where}: unknown test '${String(test)}' (expected one of ${SIGNIFICANCE_TESTS.join(', ')})`);
  }
  return { resamples, seed, alpha, correction, test, confidence };
}

/**
 * Significance of each component's effect. `effects` is components × examples (each row one
 * component's effect on every example, all rows of one length).
 */
export function significance(effects: readonly ArrayLike<number>[], opts: SignificanceOptions = {}): SignificanceResult {
  const o = resolveSignificanceOptions(opts);
  const C = effects.length;
  const n = C > 0 ? effects[0].length : 0;
  if (C > 0 && n === 0) throw new CircuitryError('significance: the effects have no examples (each component needs at least one value)');
  effects.forEach((row, c) => {
    if (row.length !== n) throw new CircuitryError(`significance: component ${c} has ${row.length} examples but component 0 has ${n}; every component needs one value per example`);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(row[i])) throw new CircuitryError(`significance: component ${c}, example ${i} is ${row[i]}; effects must be finite numbers`);
    }
  });
  const rng = new SeededRandom(o.seed);
  const R = o.resamples;
  // bootstrap draws, shared by all components: R × n example indices
  const draws = new Int32Array(R * n);
  for (let i = 0; i < draws.length; i++) draws[i] = rng.int(n);
  const exact = o.test === 'sign-flip' && n < 31 && 2 ** n <= R;
  const signs = o.test === 'sign-flip' ? signPatterns(n, R, exact, rng) : undefined;
  const nPatterns = exact ? 2 ** n : R;

  const lowQ = (1 - o.confidence) / 2;
  const highQ = 1 - lowQ;
  if (opts.engine !== undefined && opts.engine !== 'js' && opts.engine !== 'tensor') throw new CircuitryError(`significance: engine must be js or tensor, got '${String(opts.engine)}'`);
  const engine = opts.engine ?? (C * (R + nPatterns) * n > 1e6 ? 'tensor' : 'js');
  const resampled: Resampled = { n, R, draws, signs, nPatterns, exact, test: o.test, lowQ, highQ };
  const stats = engine === 'js' ? statsJs(effects, resampled) : statsTensor(effects, resampled);
  const q = adjustPValues(stats.map((s) => s.p), o.correction);
  const components = stats.map((s, c) => ({ ...s, q: q[c], significant: q[c] <= o.alpha }));
  const warnings: string[] = [];
  const minP = exact ? 1 / nPatterns : o.test === 'sign-flip' ? 1 / (1 + R) : 2 / (1 + R);
  const perTest = o.correction === 'none' ? o.alpha : o.alpha / Math.max(1, C);
  if (C > 0 && minP > perTest) {
    const what = exact ? `the ${n} examples allow ${nPatterns} sign patterns, so the smallest p-value is ${fmt(minP)}` : `with ${R} resamples the smallest p-value is ${fmt(minP)}`;
    const fix = exact ? 'use more examples' : `raise resamples to at least ${Math.ceil((o.test === 'sign-flip' ? 1 : 2) / perTest)}`;
    warnings.push(`${what}, above ${o.correction === 'none' ? 'alpha' : `alpha/${C} = ${fmt(perTest)}`}: ${o.correction === 'bh' ? 'only a large share of components can pass the BH correction together' : 'no component can be significant'}; ${fix}`);
  }
  return { options: o, nExamples: n, exact, components, nSignificant: components.filter((c) => c.significant).length, warnings };
}

interface Resampled {
  readonly n: number;
  readonly R: number;
  /** R × n bootstrap draws (example indices). */
  readonly draws: Int32Array;
  /** nPatterns × n signs (±1), for the sign-flip test. */
  readonly signs?: Float64Array;
  readonly nPatterns: number;
  readonly exact: boolean;
  readonly test: SignificanceTest;
  readonly lowQ: number;
  readonly highQ: number;
}

type Stats = { mean: number; ci_low: number; ci_high: number; p: number };

/** p from the sign-flip hits or the bootstrap means' signs. */
function pValue(r: Resampled, hits: number, boot: Float64Array): number {
  if (r.signs) return r.exact ? hits / r.nPatterns : (1 + hits) / (1 + r.R);
  let le = 0;
  let ge = 0;
  for (let i = 0; i < r.R; i++) {
    if (boot[i] <= 0) le++;
    if (boot[i] >= 0) ge++;
  }
  return Math.min(1, (2 * (1 + Math.min(le, ge))) / (1 + r.R));
}

function statsJs(effects: readonly ArrayLike<number>[], r: Resampled): Stats[] {
  const { n, R, draws, signs, nPatterns } = r;
  const boot = new Float64Array(R);
  const row = new Float64Array(n);
  return effects.map((values) => {
    let sum = 0;
    let scale = 0;
    for (let i = 0; i < n; i++) {
      row[i] = values[i];
      sum += row[i];
      scale += Math.abs(row[i]);
    }
    for (let k = 0; k < R; k++) {
      let s = 0;
      const base = k * n;
      for (let i = 0; i < n; i++) s += row[draws[base + i]];
      boot[k] = s / n;
    }
    let hits = 0;
    if (signs) {
      // |Σ s_i e_i| ≥ |Σ e_i|, with a tolerance for the rounding of sums in another order
      const target = Math.abs(sum) - 1e-12 * scale;
      for (let k = 0; k < nPatterns; k++) {
        let s = 0;
        const base = k * n;
        for (let i = 0; i < n; i++) s += signs[base + i] * row[i];
        if (Math.abs(s) >= target) hits++;
      }
    }
    const p = pValue(r, hits, boot);
    const [ciLow, ciHigh] = quantiles(boot, r.lowQ, r.highQ);
    return { mean: sum / n, ci_low: ciLow, ci_high: ciHigh, p };
  });
}

/**
 * The same statistics with the resampled sums as matrix products: bootstrap means =
 * counts [R, n] × effects [n, block] / n, sign-flip sums = signs [P, n] × effects [n, block].
 * Components go in blocks so that the R × block results stay small.
 */
function statsTensor(effects: readonly ArrayLike<number>[], r: Resampled): Stats[] {
  const { n, R, draws, signs, nPatterns } = r;
  const counts = new Float32Array(R * n);
  for (let k = 0; k < R; k++) for (let i = 0; i < n; i++) counts[k * n + draws[k * n + i]]++;
  const C = effects.length;
  const block = Math.max(1, Math.min(C, Math.floor(2 ** 22 / Math.max(R, nPatterns))));
  const countsT = tf.tensor2d(counts, [R, n]);
  const signsT = signs ? tf.tensor2d(Float32Array.from(signs), [nPatterns, n]) : undefined;
  const out: Stats[] = [];
  try {
    for (let c0 = 0; c0 < C; c0 += block) {
      const cb = Math.min(block, C - c0);
      const e = new Float32Array(n * cb); // [n, cb]
      const sums = new Float64Array(cb);
      const scales = new Float64Array(cb);
      for (let j = 0; j < cb; j++) {
        const row = effects[c0 + j];
        for (let i = 0; i < n; i++) {
          e[i * cb + j] = row[i];
          sums[j] += row[i];
          scales[j] += Math.abs(row[i]);
        }
      }
      const [bootT, hitsT] = tf.tidy(() => {
        const E = tf.tensor2d(e, [n, cb]);
        const boot = tf.transpose(tf.div(tf.matMul(countsT, E), n)); // [cb, R]
        if (!signsT) return [boot, undefined];
        const flips = tf.abs(tf.matMul(signsT, E)); // [P, cb]
        // float32 sums: a relative tolerance of 1e-5 of Σ|e| counts near-ties as hits (conservative)
        const target = tf.tensor1d(Float32Array.from(sums, (x, j) => Math.abs(x) - 1e-5 * scales[j]));
        return [boot, tf.sum(tf.cast(tf.greaterEqual(flips, target), 'float32'), 0)];
      });
      const bootData = bootT.dataSync();
      const hits = hitsT?.dataSync();
      tf.dispose([bootT, ...(hitsT ? [hitsT] : [])]);
      const boot = new Float64Array(R);
      for (let j = 0; j < cb; j++) {
        for (let k = 0; k < R; k++) boot[k] = bootData[j * R + k];
        const p = pValue(r, hits ? hits[j] : 0, boot);
        const [ciLow, ciHigh] = quantiles(boot, r.lowQ, r.highQ);
        out.push({ mean: sums[j] / n, ci_low: ciLow, ci_high: ciHigh, p });
      }
    }
  } finally {
    tf.dispose([countsT, ...(signsT ? [signsT] : [])]);
  }
  return out;
}

/**
 * Multiple-testing adjustment. `bh`: Benjamini–Hochberg q-values q_(i) = min_{j ≥ i} m·p_(j)/j
 * (p sorted ascending, capped at 1); `bonferroni`: min(1, m·p); `none`: p.
 */
export function adjustPValues(p: readonly number[], correction: Correction): number[] {
  const m = p.length;
  p.forEach((x, i) => {
    if (!(x >= 0 && x <= 1)) throw new CircuitryError(`p-value ${i} is ${x}; p-values lie in [0, 1]`);
  });
  if (correction === 'none') return [...p];
  if (correction === 'bonferroni') return p.map((x) => Math.min(1, x * m));
  const order = p.map((_, i) => i).sort((a, b) => p[a] - p[b] || a - b);
  const q = new Array<number>(m);
  let running = 1;
  for (let k = m - 1; k >= 0; k--) {
    const i = order[k];
    running = Math.min(running, (p[i] * m) / (k + 1));
    q[i] = running;
  }
  return q;
}

/** Sign patterns as ±1, R × n (random) or 2^n × n (every pattern, when exact). */
function signPatterns(n: number, R: number, exact: boolean, rng: SeededRandom): Float64Array {
  if (exact) {
    const count = 2 ** n;
    const out = new Float64Array(count * n);
    for (let r = 0; r < count; r++) for (let i = 0; i < n; i++) out[r * n + i] = (r >>> i) & 1 ? -1 : 1;
    return out;
  }
  const out = new Float64Array(R * n);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform() < 0.5 ? -1 : 1;
  return out;
}

/** Two quantiles of `x` (linear interpolation between order statistics); reorders `x`. */
function quantiles(x: Float64Array, lo: number, hi: number): [number, number] {
  return [quantile(x, lo), quantile(x, hi)];
}

function quantile(x: Float64Array, q: number): number {
  const h = (x.length - 1) * q;
  const k = Math.floor(h);
  const a = select(x, k);
  if (k + 1 >= x.length || h === k) return a;
  // after select, every element above index k is ≥ x[k]: the next order statistic is their minimum
  let b = Infinity;
  for (let i = k + 1; i < x.length; i++) if (x[i] < b) b = x[i];
  return a + (h - k) * (b - a);
}

/** Rearranges `x` so that x[k] is its k-th smallest value, smaller ones before it and larger after. */
function select(x: Float64Array, k: number): number {
  let left = 0;
  let right = x.length - 1;
  while (right > left) {
    // median of three as the pivot
    const mid = (left + right) >>> 1;
    const pivot = median3(x[left], x[mid], x[right]);
    let i = left;
    let j = right;
    while (i <= j) {
      while (x[i] < pivot) i++;
      while (x[j] > pivot) j--;
      if (i <= j) {
        const t = x[i];
        x[i] = x[j];
        x[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return x[k];
}

function median3(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
}

function fmt(x: number): string {
  return x.toPrecision(2);
}
