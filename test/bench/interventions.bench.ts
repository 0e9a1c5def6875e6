import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../../src/model/load.js';
import { CircuitGraph } from '../../src/graph/graph.js';
import { Patcher } from '../../src/patching/patcher.js';
import { finestSites, hierarchicalSearch } from '../../src/interventions/hierarchical.js';
import { evaluateSites } from '../../src/interventions/sites.js';
import { causalTrace } from '../../src/interventions/causal-tracing.js';
import { significance } from '../../src/interventions/significance.js';
import { optimalDirection } from '../../src/interventions/optimal-direction.js';
import { SeededRandom } from '../../src/interventions/rng.js';
import { randomGpt2 } from '../helpers/random-model.js';
import { fmt } from './timing.js';

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/**
 * Interventions: hierarchical search against the full sweep (components, stacked passes, wall
 * time), causal tracing with and without stacked restorations, significance engines, and the
 * optimal direction's cost per step.
 */
export async function benchInterventions(log: (line: string) => void): Promise<void> {
  // hierarchical search vs the full sweep of every head and neuron at every position
  for (const [name, task, direction] of [
    ['planted-and', 'both-colors', 'noise'],
    ['planted-induction', 'induction', 'denoise'],
  ] as const) {
    const { model, zoo } = await loadModel(name);
    const cfg = model.cfg;
    const data = zoo!.dataset!(task, { n: 8, seed: 1 });
    const patcher = new Patcher(model, new CircuitGraph({ nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: !cfg.attnOnly, qkv: true }), data, { metric: 'logit-diff', direction });
    hierarchicalSearch(patcher, { floor: 0.1, finest: 'heads' }); // warm-up
    let t0 = performance.now();
    const h = hierarchicalSearch(patcher, { floor: 0.1 });
    const tHier = seconds(t0);
    t0 = performance.now();
    const sites = finestSites(patcher);
    const full = evaluateSites(patcher, sites);
    const tFull = seconds(t0);
    const span = patcher.fullyPatchedMetric - patcher.baseMetric;
    const fullTop = sites
      .map((s, i) => ({ name: s.name, e: (full.mean[i] - patcher.baseMetric) / span }))
      .filter((c) => Math.abs(c.e) >= 0.1)
      .map((c) => c.name)
      .sort();
    const hierTop = h.kept.map((c) => c.name).sort();
    const same = fullTop.length === hierTop.length && fullTop.every((n, i) => n === hierTop[i]);
    log(`${name} (${direction}, ${data.clean.length} prompts): hierarchical search kept ${hierTop.join(', ')}; full sweep above the floor: ${same ? 'the same' : fullTop.join(', ')}`);
    log(`  components ${h.evaluated} / ${h.fullSweep.components} = ${fmt(100 * h.patchedFraction, 1)}%; stacked forward passes ${h.forwardPasses + h.cachePasses} / ${full.forwardPasses + full.cachePasses} = ${fmt(100 * h.passFraction, 1)}%; wall time ${fmt(tHier)} s / ${fmt(tFull)} s = ${fmt((100 * tHier) / tFull, 1)}%`);
    patcher.dispose();
    model.dispose();
  }

  // causal tracing: stacked restorations against one restoration per pass
  {
    const model = randomGpt2({ nLayers: 6, nHeads: 8, dModel: 256, dMlp: 1024, vocab: 2048, nCtx: 64, seed: 4 });
    const tokens = Array.from({ length: 12 }, (_, i) => (i * 97 + 5) % 2048);
    const opts = { noisePositions: [1, 2, 3], samples: 4, seed: 0 };
    causalTrace(model, tokens, 7, { ...opts, samples: 1, kinds: ['mlp_out'] }); // warm-up
    let t0 = performance.now();
    const stacked = causalTrace(model, tokens, 7, opts);
    const tStacked = seconds(t0);
    t0 = performance.now();
    causalTrace(model, tokens, 7, { ...opts, kinds: ['resid_pre'], stackBudget: 1 });
    const tSingle = seconds(t0);
    const n = 4 * 6 * 12;
    log(`causal tracing, 6 layers × d 256, 12 tokens, 4 noise samples: ${n} restorations in ${stacked.forwardPasses} passes, ${fmt(tStacked)} s (${fmt((1000 * tStacked) / n, 1)} ms each); unstacked ${fmt((1000 * tSingle) / (6 * 12), 1)} ms each`);
    model.dispose();
  }

  // significance: js (float64 loops) vs tensor (matrix products) engines
  {
    const rng = new SeededRandom(3);
    for (const [C, n, R] of [
      [200, 32, 10_000],
      [2000, 64, 10_000],
    ] as const) {
      const effects = Array.from({ length: C }, (_, c) => Float64Array.from({ length: n }, () => (c < 5 ? 1 : 0) + rng.normal()));
      const times: string[] = [];
      for (const engine of ['js', 'tensor'] as const) {
        if (engine === 'js' && C > 500) continue;
        const t0 = performance.now();
        significance(effects, { resamples: R, seed: 1, engine });
        times.push(`${engine} ${fmt(seconds(t0))} s`);
      }
      log(`significance, ${C} components × ${n} examples × ${R} resamples (bootstrap CI + sign-flip p + BH): ${times.join(', ')}`);
    }
  }

  // optimal direction: cost per ascent step
  {
    const { model, zoo } = await loadModel('planted-and');
    const data = zoo!.dataset!('both-colors', { n: 16, seed: 1 });
    const patcher = new Patcher(model, new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true }), data, { metric: 'logit-diff', direction: 'denoise' });
    const t0 = performance.now();
    const r = optimalDirection(patcher, 'resid_pre:1@2', { seed: 0 });
    const t = seconds(t0);
    log(`optimal direction at resid_pre:1@2 on planted-and (16 prompts): recovery ${fmt(r.recovery, 3)} vs clean patch ${fmt(r.patch.recovery, 3)}, ${r.steps} steps in ${fmt(t)} s (${fmt((1000 * t) / r.steps, 1)} ms per forward + backward step)`);
    patcher.dispose();
    model.dispose();
  }
  log(`tensors alive at the end: ${tf.memory().numTensors}`);
}
