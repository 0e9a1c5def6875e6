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
      for (const [value, expected] of [[1, clean.logits], [0, corrupted.logits]] as const) {
        const logits = patcher.engine.maskedForward({ run, patch, masks: tf.tensor2d(graph.denseEdgeArray(value), [graph.nDst, graph.nSrc]) });
        expect(maxAbsDiff(logits.dataSync(), expected.dataSync())).toBeLessThan(1e-5);
        logits.dispose();
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
