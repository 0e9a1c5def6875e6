import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import type { Transformer } from '../src/model/transformer.js';
import { TINY, readJson, maxAbsDiff } from './helpers/fixtures.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';

const ref = readJson<{ clean_metric: number; corrupted_metric: number; edges: Record<string, { eap: number; exact_patch_delta: number }> }>(TINY, 'edges.json');

describe('masked edge forward on tiny-gpt2', () => {
  let model: Transformer;
  let graph: CircuitGraph;
  let patcher: Patcher;
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadTinyModel();
    graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
    patcher = new Patcher(model, graph, loadTinyData(), { metric: 'logit-diff' });
  });
  afterAll(() => {
    patcher.dispose();
    model.dispose();
  });

  it('reproduces the reference clean and corrupted metrics', () => {
    expect(patcher.cleanMetric).toBeCloseTo(ref.clean_metric, 5);
    expect(patcher.corruptedMetric).toBeCloseTo(ref.corrupted_metric, 5);
  });

  it('keeps the clean logits with every edge kept and gives the corrupted logits with every edge patched', () => {
    patcher.forEachChunk(({ run, patch, clean, corrupted }) => {
      for (const [value, run_] of [[1, clean], [0, corrupted]] as const) {
        const expected = model.forward(run_.tokens); // every position
        const masks = tf.tensor2d(graph.denseEdgeArray(value), [graph.nDst, graph.nSrc]);
        const logits = patcher.engine.maskedForward({ run, patch, masks, allPositions: true });
        expect(logits.shape).toEqual(expected.shape);
        expect(maxAbsDiff(logits.dataSync(), expected.dataSync())).toBeLessThan(1e-5);
        // by default only the last position, which the metrics read
        const last = patcher.engine.maskedForward({ run, patch, masks });
        expect(last.shape).toEqual([expected.shape[0], 1, expected.shape[2]]);
        expect(maxAbsDiff(last.dataSync(), run_.logits.dataSync())).toBeLessThan(1e-5);
        tf.dispose([expected, masks, logits, last]);
      }
    });
  });

  it('single-edge patching equals the exact effects of the fixture', () => {
    const masks = graph.edges.map((e) => {
      const m = patcher.fullMask();
      m[e.index] = 0;
      return m;
    });
    const values = patcher.evaluate(masks);
    const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.exact_patch_delta)));
    graph.edges.forEach((e, i) => {
      expect(Math.abs(values[i] - patcher.cleanMetric - ref.edges[e.name].exact_patch_delta), e.name).toBeLessThan(1e-4 * largest);
    });
  });

  it('the sparse pass (few patched sources) equals the dense pass, from every start layer', () => {
    // fractional and zero entries, sources below and at the first patched layer, every kind of destination
    const picks = [
      ['input->a0.h1<k>'],
      ['a0.h2->a1.h0<q>', 'm0->a1.h3<v>'],
      ['a0.h0->m0', 'a0.h0->logits', 'input->a1.h1<q>'],
      ['a1.h2->m1', 'm0->logits', 'a0.h3->a1.h2<v>'],
      ['a1.h0->logits'],
    ];
    const masks = picks.map((names, k) => {
      const m = patcher.fullMask();
      names.forEach((n, i) => (m[graph.edge(n).index] = (k + i) % 2 === 0 ? 0 : 0.3));
      return m;
    });
    // every head input of layer 1 in one copy: more than the projected path takes (K·H), so the split path
    const wide = patcher.fullMask();
    for (let h = 0; h < 4; h++) for (const x of ['q', 'k', 'v']) wide[graph.edge(`a0.h${h}->a1.h${h}<${x}>`).index] = 0.5;
    patcher.forEachChunk(({ run, patch }) => {
      const sparse = patcher.engine.maskedForward({ run, patch, masks: [wide], allPositions: true });
      const dense = patcher.engine.maskedForward({ run, patch, masks: tf.tensor2d(wide, [graph.nDst, graph.nSrc]), allPositions: true });
      expect(maxAbsDiff(sparse.dataSync(), dense.dataSync())).toBeLessThan(1e-5);
      tf.dispose([sparse, dense]);
    });
    patcher.forEachChunk(({ run, patch }) => {
      for (const start of [0, 1]) {
        const group = masks.filter((m) => patcher.engine.firstPatchedLayer(m) >= start);
        const sparse = patcher.engine.maskedForward({ run, patch, masks: group, startAtLayer: start, allPositions: true });
        const dense = patcher.engine.maskedForward({ run, patch, masks: tf.tensor3d(Float32Array.from(group.flatMap((m) => [...m])), [group.length, graph.nDst, graph.nSrc]), startAtLayer: start, allPositions: true });
        expect(sparse.shape).toEqual(dense.shape);
        expect(maxAbsDiff(sparse.dataSync(), dense.dataSync())).toBeLessThan(1e-5);
        tf.dispose([sparse, dense]);
      }
    });
  });

  it('evaluations and gradients leak no tensors', () => {
    patcher.maskGradient(); // the first backward pass caches the weights' transposes
    const before = tf.memory().numTensors;
    const m = patcher.fullMask();
    m[graph.edges[5].index] = 0;
    patcher.evaluate([m, patcher.fullMask()]);
    patcher.maskGradient(m);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the mask gradient at m = 1 is minus the EAP score', () => {
    const { value, grad } = patcher.maskGradient();
    expect(value).toBeCloseTo(ref.clean_metric, 5);
    const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.eap)));
    for (const e of graph.edges) expect(Math.abs(-grad[e.index] - ref.edges[e.name].eap), e.name).toBeLessThan(1e-4 * largest);
  });
});
