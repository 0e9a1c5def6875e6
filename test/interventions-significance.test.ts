import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { runSweep } from '../src/patching/sweeps.js';
import { adjustPValues, significance } from '../src/interventions/significance.js';
import { edgeAttributionSignificance, sweepWithSignificance } from '../src/interventions/sweep-significance.js';
import { SeededRandom } from '../src/interventions/rng.js';
import { CircuitryError } from '../src/errors.js';
import type { ZooDataset } from '../src/zoo/index.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';
import type { Ablation, Direction } from '../src/patching/patcher.js';

/** components × examples: N(mean_c, 1) effects, the first `real` components with mean `effect`. */
function synthetic(seed: number, components: number, examples: number, real: number, effect: number): Float64Array[] {
  const rng = new SeededRandom(1000 + seed);
  return Array.from({ length: components }, (_, c) => Float64Array.from({ length: examples }, () => (c < real ? effect : 0) + rng.normal()));
}

// the tensor engine runs on the backend: wasm, as in the CLI (tfjs' default would be its slow cpu backend)
beforeAll(async () => {
  await initBackend('wasm');
});

describe('significance (pure statistics)', () => {
  it('Benjamini–Hochberg and Bonferroni adjust p-values as defined', () => {
    // BH by hand: m = 5, sorted p = .01 .02 .03 .04 .5 -> m·p/k = .05 .05 .05 .05 .5, then running minima from the top
    const p = [0.04, 0.01, 0.5, 0.03, 0.02];
    const bh = adjustPValues(p, 'bh');
    [0.05, 0.05, 0.5, 0.05, 0.05].forEach((q, i) => expect(bh[i]).toBeCloseTo(q, 12));
    // a larger p later in the order can lower earlier q-values (step-up): .01 .04 .045 -> 3·.01/1=.03, 3·.04/2=.06, 3·.045/3=.045
    const step = adjustPValues([0.01, 0.04, 0.045], 'bh');
    [0.03, 0.045, 0.045].forEach((q, i) => expect(step[i]).toBeCloseTo(q, 12));
    expect(adjustPValues([0.01, 0.3, 0.5], 'bonferroni')).toEqual([0.03, 0.8999999999999999, 1]);
    expect(adjustPValues([0.01, 0.3], 'none')).toEqual([0.01, 0.3]);
  });

  it('the exact sign-flip test enumerates every pattern; constant effects have a point interval', () => {
    // five equal positive effects: only the all-plus and all-minus patterns reach |mean| -> p = 2/32
    const r = significance([[2, 2, 2, 2, 2], [1, -1, 1, -1, 0]], { resamples: 64, seed: 3 });
    expect(r.exact).toBe(true);
    expect(r.components[0].p).toBeCloseTo(2 / 32, 12);
    expect(r.components[0].mean).toBe(2);
    expect(r.components[0].ci_low).toBe(2);
    expect(r.components[0].ci_high).toBe(2);
    // zero mean: every pattern reaches it
    expect(r.components[1].p).toBe(1);
    expect(r.components[1].ci_low).toBeLessThan(0);
    expect(r.components[1].ci_high).toBeGreaterThan(0);
    // with fewer resamples than patterns the test is a Monte Carlo one with p ≥ 1/(R+1)
    const mc = significance([[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]], { resamples: 200, seed: 3 });
    expect(mc.exact).toBe(false);
    expect(mc.components[0].p).toBeGreaterThanOrEqual(1 / 201);
    expect(mc.components[0].p).toBeLessThan(0.02);
  });

  it('is deterministic for a seed and depends on it', () => {
    const e = synthetic(1, 6, 12, 2, 0.8);
    const a = significance(e, { resamples: 500, seed: 7 });
    const b = significance(e, { resamples: 500, seed: 7 });
    const c = significance(e, { resamples: 500, seed: 8 });
    expect(b).toEqual(a);
    expect(c.components.map((x) => x.ci_low)).not.toEqual(a.components.map((x) => x.ci_low));
  });

  it('bootstrap intervals cover the true mean at about their level, and null p-values are uniform', () => {
    // 300 components of 25 N(0.3, 1) examples: the 95% interval should cover 0.3 for ~95% of them
    const e = synthetic(2, 300, 25, 300, 0.3);
    const r = significance(e, { resamples: 2000, seed: 1, correction: 'none' });
    const covered = r.components.filter((c) => c.ci_low <= 0.3 && 0.3 <= c.ci_high).length / 300;
    expect(covered).toBeGreaterThan(0.88); // the percentile bootstrap undercovers slightly at n = 25
    expect(covered).toBeLessThan(0.99);
    const nulls = significance(synthetic(3, 400, 20, 0, 0), { resamples: 1000, seed: 2, correction: 'none' });
    const rejected = nulls.components.filter((c) => c.p < 0.05).length / 400;
    expect(rejected).toBeGreaterThan(0.02);
    expect(rejected).toBeLessThan(0.09);
    // the bootstrap test is the other choice, with the same behaviour on nulls
    const boot = significance(synthetic(3, 400, 20, 0, 0), { resamples: 1000, seed: 2, correction: 'none', test: 'bootstrap' });
    const bootRejected = boot.components.filter((c) => c.p < 0.05).length / 400;
    expect(bootRejected).toBeGreaterThan(0.01);
    expect(bootRejected).toBeLessThan(0.12);
  });

  it('FDR at 5% flags the one real effect among 99 nulls and no more than the expected share of nulls, over 20 seeds', () => {
    let discoveries = 0;
    let falseDiscoveries = 0;
    let fdpSum = 0;
    let bonferroniFamilies = 0;
    for (let seed = 0; seed < 20; seed++) {
      const e = synthetic(seed, 100, 30, 1, 1.5);
      const bh = significance(e, { resamples: 5000, seed, alpha: 0.05, correction: 'bh' });
      expect(bh.components[0].significant, `seed ${seed}`).toBe(true);
      const flagged = bh.components.filter((c) => c.significant).length;
      const nullFlagged = bh.components.slice(1).filter((c) => c.significant).length;
      discoveries += flagged;
      falseDiscoveries += nullFlagged;
      fdpSum += nullFlagged / flagged;
      // Bonferroni on the same p-values
      const bonf = adjustPValues(bh.components.map((c) => c.p), 'bonferroni');
      expect(bonf[0], `seed ${seed}`).toBeLessThanOrEqual(0.05);
      if (bonf.slice(1).some((q) => q <= 0.05)) bonferroniFamilies++;
      // without a correction, ~5 of the 99 nulls pass p ≤ 0.05 in each seed: the correction is what keeps them out
      if (seed === 0) expect(bh.components.slice(1).filter((c) => c.p <= 0.05).length).toBeGreaterThan(1);
    }
    console.log(`FDR 5%: ${discoveries} discoveries over 20 seeds, ${falseDiscoveries} of them nulls (mean FDP ${(fdpSum / 20).toFixed(3)}); Bonferroni: ${bonferroniFamilies}/20 seeds with a false positive`);
    // BH controls E[FDP] ≤ 0.05·99/100; the 20-seed mean estimates it
    expect(fdpSum / 20).toBeLessThanOrEqual(0.05);
    expect(bonferroniFamilies).toBeLessThanOrEqual(2);
  });

  it('the tensor engine gives the js engine\'s statistics (same resamples, float32 sums)', () => {
    const e = synthetic(5, 40, 24, 4, 0.9);
    for (const test of ['sign-flip', 'bootstrap'] as const) {
      const a = significance(e, { resamples: 3000, seed: 4, test, engine: 'js' });
      const b = significance(e, { resamples: 3000, seed: 4, test, engine: 'tensor' });
      a.components.forEach((c, i) => {
        expect(b.components[i].mean).toBeCloseTo(c.mean, 10);
        expect(Math.abs(b.components[i].ci_low - c.ci_low)).toBeLessThan(1e-5);
        expect(Math.abs(b.components[i].ci_high - c.ci_high)).toBeLessThan(1e-5);
        // ties within float32 rounding may count as hits: at most a resample or two apart
        expect(Math.abs(b.components[i].p - c.p)).toBeLessThanOrEqual(2 / 3001 + 1e-12);
      });
      expect(b.components.map((c) => c.significant)).toEqual(a.components.map((c) => c.significant));
    }
  });

  it('warns when there are too few resamples for the correction', () => {
    const r = significance(synthetic(4, 100, 20, 1, 3), { resamples: 200, seed: 0 });
    expect(r.warnings.join(' ')).toMatch(/raise resamples to at least 2000/);
    expect(significance(synthetic(4, 10, 20, 1, 3), { resamples: 2000 }).warnings).toEqual([]);
  });

  it('rejects bad input with clear errors', () => {
    expect(() => significance([[1, 2], [1]])).toThrow(/component 1 has 1 examples but component 0 has 2/);
    expect(() => significance([[1, NaN]])).toThrow(/component 0, example 1 is NaN/);
    expect(() => significance([[]])).toThrow(CircuitryError);
    expect(() => significance([[1, 2]], { alpha: 1.5 })).toThrow(/alpha must be a number strictly between 0 and 1/);
    expect(() => significance([[1, 2]], { resamples: 0 })).toThrow(/resamples must be an integer/);
    expect(() => significance([[1, 2]], { correction: 'holm' as never })).toThrow(/unknown correction 'holm'/);
    expect(() => adjustPValues([0.2, 1.2], 'bh')).toThrow(/p-value 1 is 1.2/);
  });
});

describe('significance of sweeps and attributions on planted models', () => {
  let loaded: LoadedModel;
  let patcher: Patcher;
  let graph: CircuitGraph;
  let data: ZooDataset;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('planted-and');
    const cfg = loaded.model.cfg;
    graph = new CircuitGraph({ nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: !cfg.attnOnly, qkv: true });
    data = loaded.zoo!.dataset!('both-colors', { n: 12, seed: 5 });
    patcher = new Patcher(loaded.model, graph, data, { metric: 'logit-diff', direction: 'noise' });
  });
  afterAll(() => {
    patcher.dispose();
    loaded.model.dispose();
  });

  it('sweepWithSignificance is runSweep plus statistics: the planted heads are significant, the decoys are not', () => {
    sweepWithSignificance(patcher, 'heads', { resamples: 10, seed: 1 }); // warm-up: first passes of a shape create cached tensors
    const before = tf.memory().numTensors;
    const r = sweepWithSignificance(patcher, 'heads', { resamples: 2000, seed: 1 });
    expect(tf.memory().numTensors).toBe(before);
    const ref = runSweep(patcher, 'heads');
    expect(r.components.map((c) => c.name)).toEqual(ref.components.map((c) => c.name));
    r.components.forEach((c, i) => {
      expect(c.metric).toBeCloseTo(ref.components[i].metric, 4);
      expect(c.delta).toBeCloseTo(ref.components[i].delta, 4);
      expect(c.recovery).toBeCloseTo(ref.components[i].recovery, 5);
      // the interval is of the per-example effects with float32 noise (< 1e-5 of clean − corrupted) set to zero
      const floor = 1e-5 * Math.abs(r.clean - r.corrupted);
      expect(c.ci_low).toBeLessThanOrEqual(c.delta + floor);
      expect(c.ci_high).toBeGreaterThanOrEqual(c.delta - floor);
    });
    const flagged = r.components.filter((c) => c.significant).map((c) => c.name);
    // the AND chain's heads; every decoy writes identical values in both runs
    expect(flagged).toEqual(['a0.h2', 'a1.h1']);
    for (const c of r.components) if (!flagged.includes(c.name)) expect(c.p).toBe(1);
    expect(r.significance).toMatchObject({ resamples: 2000, seed: 1, alpha: 0.05, correction: 'bh', test: 'sign-flip', n_examples: 12, n_significant: 2 });
    // 12 examples allow 4096 sign patterns, more than 2000 resamples: Monte Carlo p ≥ 1/2001
    expect(r.components.find((c) => c.name === 'a0.h2')!.p).toBeCloseTo(1 / 2001, 10);
  });

  it('single-edge sweeps get statistics too, and the planted edges are the significant ones', () => {
    const r = sweepWithSignificance(patcher, 'edges', { resamples: 4000, seed: 2 });
    const gt = [...loaded.zoo!.groundTruth!['both-colors']].sort();
    expect(r.components.filter((c) => c.significant).map((c) => c.name).sort()).toEqual(gt);
    expect(r.components).toHaveLength(graph.nEdges);
  });

  it('per-example edge attribution averages to the batch EAP score and flags the planted edges', () => {
    const one = { clean: data.clean.slice(0, 1), corrupted: data.corrupted.slice(0, 1), answers: data.answers.slice(0, 1), wrongs: data.wrongs.slice(0, 1) };
    edgeAttributionSignificance({ model: loaded.model, graph, data: one }, { metric: 'logit-diff', resamples: 10 }); // warm-up: the first gradient passes leave cached tensors behind
    const before = tf.memory().numTensors;
    const r = edgeAttributionSignificance({ model: loaded.model, graph, data }, { metric: 'logit-diff', resamples: 4000, seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
    // EAP is minus the mask gradient at m = 1 of the batch-mean metric
    const { grad } = patcher.maskGradient();
    const largest = Math.max(...graph.edges.map((e) => Math.abs(grad[e.index])));
    graph.edges.forEach((e, i) => expect(Math.abs(r.components[i].mean + grad[e.index])).toBeLessThan(1e-4 * largest + 1e-6));
    expect(r.forwardPasses).toBe(3 * 12);
    const flagged = r.edges.filter((_, i) => r.components[i].significant);
    for (const e of loaded.zoo!.groundTruth!['both-colors']) expect(flagged).toContain(e);
    expect(() => edgeAttributionSignificance({ model: loaded.model, graph, data }, { metric: 'accuracy' })).toThrow(/accuracy has zero gradient/);
  });
});

describe('per-example sweeps agree with runSweep', () => {
  it('for the activation sweep kinds, both directions and every ablation (tiny-gpt2 fixture)', async () => {
    await initBackend('wasm');
    const model = loadTinyModel();
    const graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
    const data = loadTinyData();
    const cases: [Direction, Ablation, number | undefined, string[]][] = [
      ['noise', 'patch', undefined, ['resid', 'mlp-out', 'heads', 'qkv', 'pattern']], // attn-out and heads-by-pos: interventions-search.test.ts
      ['denoise', 'zero', 5, ['heads', 'mlp-out']], // chunks of 5, 5, 5 and 1 prompts
      ['denoise', 'mean', undefined, ['resid', 'heads']],
    ];
    try {
      for (const [direction, ablation, batchSize, kinds] of cases) {
        const p = new Patcher(model, graph, data, { metric: 'logit-diff', direction, ablation, batchSize });
        try {
          for (const kind of kinds) {
            const ref = runSweep(p, kind);
            const r = sweepWithSignificance(p, kind, { resamples: 20, seed: 0 });
            const scale = Math.max(1, ...ref.components.map((c) => Math.abs(c.metric)));
            r.components.forEach((c, i) => expect(Math.abs(c.metric - ref.components[i].metric), `${direction}/${ablation} ${c.name}`).toBeLessThan(2e-5 * scale));
            expect(r.rows).toEqual(ref.rows);
            expect(r.cols).toEqual(ref.cols);
          }
        } finally {
          p.dispose();
        }
      }
    } finally {
      model.dispose();
    }
  });
});
