import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { PatchingEngine, type RunCache } from '../src/patching/engine.js';
import { setComplementMix } from '../src/patching/buffered.js';
import { tokensRead } from '../src/metrics/index.js';
import type { Transformer } from '../src/model/transformer.js';
import { TINY, readJson, maxAbsDiff } from './helpers/fixtures.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';
import { randomGpt2 } from './helpers/random-model.js';

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

  it('logit difference unembeds its answer and wrong tokens alone, with the whole vocabulary\'s metrics', () => {
    expect(tokensRead('logit-diff', [[7], [3, 9]], [[3], [1]])).toEqual([1, 3, 7, 9]);
    for (const name of ['prob', 'logprob', 'accuracy', 'kl'] as const) expect(tokensRead(name, [[7]], [[3]])).toBeUndefined();
    const whole = new Patcher(model, graph, loadTinyData(), { metric: 'logit-diff', wholeVocabulary: true });
    try {
      // patches everywhere (the dense passes) and single edges (the sparse one), from every start layer
      const masks = [graph.denseEdgeArray(0), ...graph.edges.filter((_, i) => i % 13 === 0).map((e) => { const m = patcher.fullMask(); m[e.index] = 0; return m; })];
      const some = patcher.evaluate(masks);
      const all = whole.evaluate(masks);
      some.forEach((v, i) => expect(Math.abs(v - all[i]), `mask ${i}`).toBeLessThan(1e-5 * Math.abs(patcher.cleanMetric - patcher.corruptedMetric)));
    } finally {
      whole.dispose();
    }
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

  it('the sparse pass with last-position logits (its last block at the last query only) equals the full pass there', () => {
    // the picks patch the last block's q, k, v and MLP inputs and the logits, from sources below it and in it
    const picks = [['a0.h2->a1.h0<q>', 'a1.h1->logits'], ['a1.h2->m1', 'input->a1.h3<k>'], ['a0.h1->a1.h1<q>', 'a0.h1->a1.h1<v>', 'm1->logits'], ['input->a1.h0<q>']];
    const masks = picks.map((names) => {
      const m = patcher.fullMask();
      for (const n of names) m[graph.edge(n).index] = 0.25;
      return m;
    });
    patcher.forEachChunk(({ run, patch }) => {
      for (const start of [0, 1]) {
        const trimmed = patcher.engine.maskedForward({ run, patch, masks, startAtLayer: start });
        const full = patcher.engine.maskedForward({ run, patch, masks, startAtLayer: start, allPositions: true });
        const [KB, p, V] = full.shape;
        expect(trimmed.shape).toEqual([KB, 1, V]);
        const last = tf.slice(full, [0, p - 1, 0], [KB, 1, V]);
        expect(maxAbsDiff(trimmed.dataSync(), last.dataSync())).toBeLessThan(1e-5);
        tf.dispose([trimmed, full, last]);
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

/** What `f` returns when run under a gradient tape: the engine then takes its tensor path. */
function underTape(f: () => tf.Tensor): tf.Tensor {
  let out: tf.Tensor | undefined;
  const g = tf.grad((x: tf.Tensor) => {
    out = tf.keep(f());
    return tf.sum(x);
  })(tf.scalar(1));
  g.dispose();
  return out!;
}

// Without a gradient tape the dense pass runs on a RowBuffer (src/patching/buffered.ts); under one,
// on tensors. Both must give the same logits for any masks.
describe('the buffered dense pass equals the tensor one', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('caches a run (sources, residual streams, logits) and a masked base run as the tensor path does', () => {
    const spec = { nLayers: 3, nHeads: 4, dModel: 32, vocab: 40, seed: 9 };
    const model = randomGpt2(spec);
    const graph = new CircuitGraph({ nLayers: 3, nHeads: 4, hasMlp: true, qkv: true });
    const engine = new PatchingEngine(model, graph);
    const tokens = tf.tensor2d([[1, 5, 9, 2, 7], [3, 8, 4, 6, 0]], [2, 5], 'int32');
    const other = tf.tensor2d([[2, 5, 1, 2, 7], [3, 9, 4, 6, 1]], [2, 5], 'int32');
    const mask = new Float32Array(graph.denseSize).fill(1);
    for (const e of graph.edges) if (e.index % 3 === 0) mask[e.index] = 0;
    const expectSame = (a: RunCache, b: RunCache, what: string) => {
      expect(a.sources.shape, what).toEqual([graph.nSrc, 2, 5, 32]);
      expect(maxAbsDiff(a.sources.dataSync(), b.sources.dataSync()), what).toBeLessThan(1e-6);
      expect(a.residPre.length, what).toBe(3);
      a.residPre.forEach((r, l) => expect(maxAbsDiff(r.dataSync(), b.residPre[l].dataSync()), `${what} resid ${l}`).toBeLessThan(1e-6));
      expect(maxAbsDiff(a.logits.dataSync(), b.logits.dataSync()), what).toBeLessThan(1e-5);
    };
    const inPlace = engine.cacheRun(tokens);
    let tensors: RunCache | undefined;
    // made inside tf.grad's scope: keep what the cache holds
    const kept = (c: RunCache) => (tf.keep(c.sources), tf.keep(c.logits), c.residPre.forEach((r) => tf.keep(r)), c);
    underTape(() => {
      tensors = kept(engine.cacheRun(tokens));
      return tf.scalar(0);
    }).dispose();
    expectSame(inPlace, tensors!, 'run');
    const patch = engine.cacheRun(other);
    const based = engine.cacheMaskedRun(inPlace, patch.sources, mask);
    let basedTensors: RunCache | undefined;
    underTape(() => {
      basedTensors = kept(engine.cacheMaskedRun(inPlace, patch.sources, mask));
      return tf.scalar(0);
    }).dispose();
    expectSame(based, basedTensors!, 'base run');
    // the in-place paths leave nothing behind
    const before = tf.memory().numTensors;
    engine.cacheRun(tokens).dispose();
    engine.cacheMaskedRun(inPlace, patch.sources, mask).dispose();
    expect(tf.memory().numTensors).toBe(before);
    for (const c of [inPlace, tensors!, patch, based, basedTensors!]) c.dispose();
    engine.dispose();
    tf.dispose([tokens, other]);
    model.dispose();
  });

  it.each([
    { name: 'q/k/v graph', spec: { nLayers: 3, nHeads: 4, dModel: 32, vocab: 40, seed: 5 }, qkv: true },
    { name: 'node graph', spec: { nLayers: 3, nHeads: 4, dModel: 32, vocab: 40, seed: 6 }, qkv: false },
    { name: 'attention-only model', spec: { nLayers: 2, nHeads: 3, dModel: 24, vocab: 40, seed: 7, attnOnly: true }, qkv: true },
    { name: 'LayerNorm-free model', spec: { nLayers: 2, nHeads: 3, dModel: 24, vocab: 40, seed: 8, normalization: 'none' as const }, qkv: true },
  ])('on a $name, for fractional masks, stacked copies, every start layer and both kinds of logits', ({ spec, qkv }) => {
    const model = randomGpt2(spec);
    const graph = new CircuitGraph({ nLayers: spec.nLayers, nHeads: spec.nHeads, hasMlp: !spec.attnOnly, qkv });
    const rows = (salt: number) => Array.from({ length: 3 }, (_, b) => Array.from({ length: 5 }, (_, i) => (b * 7 + i * 11 + salt) % spec.vocab));
    const patcher = new Patcher(model, graph, { clean: rows(1), corrupted: rows(2), answers: [[1], [2], [3]], wrongs: [[4], [5], [6]] }, { metric: 'logit-diff' });
    const masks = [0, 1].map((k) => {
      const m = patcher.fullMask();
      // fractional values on the edges of layers ≥ 1 only for k = 1, so that start layer 1 is valid
      for (const e of graph.edges) if (k === 0 || graph.destinations[Math.floor(e.index / graph.nSrc)].layer >= 1) m[e.index] = ((e.index * 37 + k * 11) % 100) / 100;
      return m;
    });
    // a circuit as ACDC's prune sees it above layer 0: every edge patched but a few kept (one at
    // half strength); layer 0 unpatched, so that the pass may start at layer 1
    const circuit = new Float32Array(graph.denseSize);
    graph.edges.filter((_, i) => i % 9 === 4).forEach((e, i) => (circuit[e.index] = i % 5 === 0 ? 0.5 : 1));
    for (const e of graph.edges) if (graph.destinations[Math.floor(e.index / graph.nSrc)].layer === 0) circuit[e.index] = 1;
    masks.push(circuit);
    for (const mode of ['never', 'always', 'auto'] as const) {
      const before = setComplementMix(mode);
      try {
        patcher.forEachChunk(({ run, patch }) => {
          for (const start of [0, 1]) {
            const group = masks.filter((m) => patcher.engine.firstPatchedLayer(m) >= start);
            for (const allPositions of [true, false]) {
              const args = () => ({ run, patch, masks: tf.tensor3d(Float32Array.from(group.flatMap((m) => [...m])), [group.length, graph.nDst, graph.nSrc]), startAtLayer: start, allPositions });
              const buffered = tf.tidy(() => patcher.engine.maskedForward(args()));
              const tensors = underTape(() => patcher.engine.maskedForward(args()));
              expect(buffered.shape).toEqual(tensors.shape);
              expect(buffered.shape[0]).toBe(3 * group.length);
              expect(maxAbsDiff(buffered.dataSync(), tensors.dataSync()), `${mode}, from layer ${start}`).toBeLessThan(1e-5);
              tf.dispose([buffered, tensors]);
            }
          }
        });
      } finally {
        setComplementMix(before);
      }
    }
    patcher.dispose();
    model.dispose();
  });
});
