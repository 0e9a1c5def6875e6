import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { runSweep, type SweepResult } from '../src/patching/sweeps.js';
import { finestSites, hierarchicalSearch } from '../src/interventions/hierarchical.js';
import { evaluateSites } from '../src/interventions/sites.js';

/** Components whose |delta| is at least `floor` of the whole patch's effect, by name. */
function above(r: SweepResult, span: number, floor: number): string[] {
  return r.components.filter((c) => Math.abs(c.delta / span) >= floor).map((c) => c.name).sort();
}

describe('hierarchical search', () => {
  let loaded: LoadedModel;
  let patcher: Patcher;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('planted-and');
    const cfg = loaded.model.cfg;
    const data = loaded.zoo!.dataset!('both-colors', { n: 8, seed: 2 });
    // noising: every link of the AND chain is necessary, so each is found alone
    patcher = new Patcher(loaded.model, new CircuitGraph({ nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: true, qkv: true }), data, { metric: 'logit-diff', direction: 'noise' });
    hierarchicalSearch(patcher, { finest: 'heads' }); // warm-up: the first passes of a shape leave cached tensors behind
  });
  afterAll(() => {
    patcher.dispose();
    loaded.model.dispose();
  });

  it('finds the full sweeps’ top components with a fraction of the forward passes', () => {
    const before = tf.memory().numTensors;
    const r = hierarchicalSearch(patcher, { floor: 0.1 });
    expect(tf.memory().numTensors).toBe(before);
    const span = patcher.fullyPatchedMetric - patcher.baseMetric;
    // every level is recorded, with what it kept
    expect(r.levels.map((l) => l.level)).toEqual(['layers', 'positions', 'components']);
    expect(r.levels[0].components.map((c) => c.name)).toEqual(['a0', 'm0', 'a1', 'm1']);
    expect(r.levels[0].components.filter((c) => c.kept).map((c) => c.name)).toEqual(['a0', 'm0', 'a1']);
    expect(r.levels[1].components.filter((c) => c.kept).map((c) => c.name)).toEqual(['a0@2', 'm0@2', 'a1@7']);
    expect(r.levels[1].components).toHaveLength(3 * 8);

    // the same components as the library's full sweeps (their own patching code): heads at every position, MLP neurons
    const headsByPos = runSweep(patcher, 'heads-by-pos');
    const neurons0 = runSweep(patcher, 'neurons:0');
    const neurons1 = runSweep(patcher, 'neurons:1');
    const keptHeads = r.kept.filter((c) => c.name.startsWith('a')).map((c) => c.name).sort();
    expect(keptHeads).toEqual(above(headsByPos, span, 0.1));
    expect(keptHeads).toEqual(['a0.h2@2', 'a1.h1@7']);
    const keptNeurons = r.kept.filter((c) => c.name.startsWith('m')).map((c) => c.name.replace(/@\d+$/, ''));
    expect(keptNeurons).toEqual([...above(neurons0, span, 0.1), ...above(neurons1, span, 0.1)]);
    expect(keptNeurons).toHaveLength(1);
    // and with the same values where the patches coincide: a0@2 is the attention output at position 2
    const attnOut = runSweep(patcher, 'attn-out');
    const a0at2 = r.levels[1].components.find((c) => c.name === 'a0@2')!;
    expect(a0at2.metric).toBeCloseTo(attnOut.components.find((c) => c.name === 'blocks.0.hook_attn_out@2')!.metric, 4);
    const h = r.levels[2].components.find((c) => c.name === 'a1.h1@7')!;
    expect(h.metric).toBeCloseTo(headsByPos.components.find((c) => c.name === 'a1.h1@7')!.metric, 4);

    // cost: the full sweep of the finest level is every head and neuron at every position
    const L = 2, H = 4, dMlp = 256, P = 8;
    expect(r.fullSweep.components).toBe(L * P * (H + dMlp));
    expect(r.evaluated).toBe(4 + 3 * P + (H + dMlp + H));
    expect(r.passFraction).toBeLessThan(0.5);
    expect(r.patchedFraction).toBeCloseTo(r.evaluated / r.fullSweep.components, 12);
    console.log(`planted-and, noising: ${r.evaluated} of ${r.fullSweep.components} components patched, ${r.forwardPasses + r.cachePasses} of ${r.fullSweep.forwardPasses + r.fullSweep.cachePasses} stacked forward passes (${(100 * r.passFraction).toFixed(1)}%; ${(100 * r.patchedFraction).toFixed(1)}% of the patched rows)`);
  });

  it('counts the full sweep’s passes as running it would', () => {
    const r = hierarchicalSearch(patcher, { finest: 'heads' });
    const full = evaluateSites(patcher, finestSites(patcher, 'heads'));
    expect(full.forwardPasses).toBe(r.fullSweep.forwardPasses);
    expect(full.cachePasses).toBe(r.fullSweep.cachePasses);
    expect(r.kept.map((c) => c.name).sort()).toEqual(['a0.h2@2', 'a1.h1@7']);
    // the top of the full heads-by-position sweep, by |delta|
    const ranked = finestSites(patcher, 'heads')
      .map((s, i) => ({ name: s.name, d: Math.abs(full.mean[i] - patcher.baseMetric) }))
      .sort((a, b) => b.d - a.d)
      .slice(0, 2)
      .map((x) => x.name)
      .sort();
    expect(ranked).toEqual(['a0.h2@2', 'a1.h1@7']);
  });

  it('block units, caps and floors', () => {
    const block = hierarchicalSearch(patcher, { unit: 'block', finest: 'heads' });
    expect(block.levels[0].components.map((c) => c.name)).toEqual(['L0', 'L1']);
    expect(block.levels[1].components.filter((c) => c.kept).map((c) => c.name)).toEqual(['L0@2', 'L1@7']);
    expect(block.kept.map((c) => c.name).sort()).toEqual(['a0.h2@2', 'a1.h1@7']);
    const capped = hierarchicalSearch(patcher, { maxKeep: 1, finest: 'heads' });
    expect(capped.levels.every((l) => l.components.filter((c) => c.kept).length <= 1)).toBe(true);
    // a floor above every effect keeps nothing, and costs only the first level
    const none = hierarchicalSearch(patcher, { floor: 2 });
    expect(none.kept).toEqual([]);
    expect(none.levels[1].components).toEqual([]);
    expect(() => hierarchicalSearch(patcher, { floor: -1 })).toThrow(/floor must be a non-negative number/);
    expect(() => hierarchicalSearch(patcher, { unit: 'resid' as never })).toThrow(/unit must be sublayer or block/);
  });
});
