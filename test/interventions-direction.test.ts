import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { MetricTargets, metricMean } from '../src/metrics/index.js';
import { optimalDirection, parseDirectionSite } from '../src/interventions/optimal-direction.js';
import type { ZooDataset } from '../src/zoo/index.js';

/** planted-and, denoising (the corrupted prompts are run; the direction is added to them). */
describe('optimal patch direction', () => {
  let loaded: LoadedModel;
  let data: ZooDataset;
  let patcher: Patcher;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('planted-and');
    const cfg = loaded.model.cfg;
    data = loaded.zoo!.dataset!('both-colors', { n: 8, seed: 4 });
    patcher = new Patcher(loaded.model, new CircuitGraph({ nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: true, qkv: true }), data, { metric: 'logit-diff', direction: 'denoise' });
    optimalDirection(patcher, 'm0@2', { steps: 1 }); // warm-up: the first passes of a shape leave cached tensors behind
  });
  afterAll(() => {
    patcher.dispose();
    loaded.model.dispose();
  });

  /** The corrupted prompts' logit difference with `v` ([positions, width]) added at the site, by hand. */
  function byHand(site: string, v: Float32Array): number {
    const s = parseDirectionSite(site, loaded.model.cfg, data.clean[0].length);
    const targets = new MetricTargets(data.answers, data.wrongs, loaded.model.cfg.dVocab);
    const value = tf.tidy(() => {
      const add = (act: tf.Tensor) => {
        const buf = tf.buffer(act.shape.slice(1), 'float32');
        const [P, w] = [act.shape[1]!, act.shape[act.shape.length - 1]!];
        const first = s.select[0];
        const positions: number[] = first === null ? Array.from({ length: P }, (_, i) => i) : [first];
        positions.forEach((pos, k) => {
          for (let i = 0; i < w; i++) {
            const val = v[k * w + i];
            if (act.rank === 4) buf.set(val, pos, s.select[1]!, i);
            else buf.set(val, pos, i);
          }
        });
        return tf.add(act, tf.expandDims(buf.toTensor(), 0));
      };
      return metricMean('logit-diff', loaded.model.forward(data.corrupted, { hooks: { [s.hook]: add } }), targets).dataSync()[0];
    });
    targets.dispose();
    return value;
  }

  it('recovers at least as much as patching in the clean activation, within the norm bound', () => {
    for (const site of ['m0@2', 'a1.h1', 'resid_pre:1@2']) {
      const before = tf.memory().numTensors;
      const r = optimalDirection(patcher, site, { seed: 1, steps: 100 });
      expect(tf.memory().numTensors).toBe(before);
      console.log(`${site}: recovery ${r.recovery.toFixed(3)} (clean patch ${r.patch.recovery.toFixed(3)}, difference ${r.difference.recovery.toFixed(3)}), ‖v‖ ${r.norm.toFixed(3)} ≤ r ${r.radius.toFixed(3)}, cosine to clean − corrupted ${r.cosine.toFixed(3)}, ${r.steps} steps${r.converged ? ', converged' : ''}`);
      expect(r.recovery, site).toBeGreaterThanOrEqual(r.patch.recovery - 1e-3);
      expect(r.patch.recovery, site).toBeGreaterThan(0.9); // each of these sites alone restores the AND's result
      // the default bound is the patch's own size; the mean difference is no longer (triangle inequality)
      expect(r.radius).toBeCloseTo(r.difference.exampleNorm, 6);
      expect(r.difference.norm).toBeLessThanOrEqual(r.difference.exampleNorm * (1 + 1e-6));
      expect(r.norm).toBeLessThanOrEqual(r.radius * (1 + 1e-5));
      expect(Math.abs(r.cosine)).toBeLessThanOrEqual(1 + 1e-6);
      expect(r.value).toBeCloseTo(byHand(site, r.vector), 3);
      expect(r.history.length).toBeGreaterThan(1);
    }
  });

  it('is deterministic for a seed; other seeds start elsewhere', () => {
    const a = optimalDirection(patcher, 'resid_pre:1@2', { seed: 5, steps: 30 });
    const b = optimalDirection(patcher, 'resid_pre:1@2', { seed: 5, steps: 30 });
    expect(Array.from(b.vector)).toEqual(Array.from(a.vector));
    expect(b.history).toEqual(a.history);
    const c = optimalDirection(patcher, 'resid_pre:1@2', { seed: 6, steps: 30 });
    expect(c.history[0]).not.toBe(a.history[0]);
    // a smaller bound: the direction stays on it, and recovers less than with the default bound
    const small = optimalDirection(patcher, 'resid_pre:1@2', { seed: 5, steps: 30, radius: a.radius / 4 });
    expect(small.norm).toBeLessThanOrEqual(a.radius / 4 + 1e-5);
    expect(small.recovery).toBeLessThan(a.recovery);
    // plain projected gradient steps reach the same bar
    const sgd = optimalDirection(patcher, 'm0@2', { seed: 2, optimizer: 'sgd', steps: 60 });
    expect(sgd.recovery).toBeGreaterThanOrEqual(sgd.patch.recovery - 1e-3);
  });

  it('rejects bad sites and options with clear errors', () => {
    expect(() => optimalDirection(patcher, 'a2.h0')).toThrow(/site: layer 2 in 'a2.h0' is out of range \(the model has layers 0..1\)/);
    expect(() => optimalDirection(patcher, 'a0.h7')).toThrow(/head 7 in 'a0.h7' is out of range/);
    expect(() => optimalDirection(patcher, 'm0@8')).toThrow(/position 8 in 'm0@8' is outside the prompts \(positions 0..7\)/);
    expect(() => optimalDirection(patcher, 'x3')).toThrow(/unknown site 'x3'/);
    expect(() => optimalDirection(patcher, 'blocks.0.attn.hook_pattern')).toThrow(/is not \[batch, pos, width\]/);
    expect(() => optimalDirection(patcher, 'm0@2', { radius: -1 })).toThrow(/radius: expected a positive number/);
    expect(() => optimalDirection(patcher, 'm0@2', { steps: 0 })).toThrow(/steps: expected a positive integer/);
    // a site where clean and corrupted agree has no default bound
    expect(() => optimalDirection(patcher, 'm1@0')).toThrow(/do not differ there, so there is no default norm bound/);
  });
});
