import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher, type PairData } from '../src/patching/patcher.js';
import type { Transformer } from '../src/model/transformer.js';
import { attributeEdges, attributeNodes, eap, eapIg, eapIgActivations, nodeScoresForGraph, type AttributionOptions, type EdgeAttribution } from '../src/attribution/index.js';
import { CircuitryError } from '../src/errors.js';
import { TINY, readJson } from './helpers/fixtures.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';

const ref = readJson<{ clean_metric: number; corrupted_metric: number; edges: Record<string, { eap: number; exact_patch_delta: number }> }>(TINY, 'edges.json');
const refLargest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.eap)));

/** max |a − b| over the graph's edges, relative to the largest |b|. */
function relDiff(graph: CircuitGraph, a: Float32Array, b: Float32Array): number {
  let worst = 0;
  let largest = 0;
  for (const e of graph.edges) {
    worst = Math.max(worst, Math.abs(a[e.index] - b[e.index]));
    largest = Math.max(largest, Math.abs(b[e.index]));
  }
  return worst / largest;
}

describe('edge attribution on tiny-gpt2', () => {
  let model: Transformer;
  let graph: CircuitGraph;
  let data: PairData;
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadTinyModel();
    graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
    data = loadTinyData();
  });
  afterAll(() => model.dispose());

  for (const gradient of ['fused', 'split', 'mask'] as const) {
    it(`EAP (${gradient} gradients) equals the reference scores on every edge`, () => {
      const r = eap({ model, graph, data }, { metric: 'logit-diff', gradient });
      expect(r.gradient).toBe(gradient);
      expect(graph.nEdges).toBe(110);
      for (const e of graph.edges) expect(Math.abs(r.scores[e.index] - ref.edges[e.name].eap), e.name).toBeLessThanOrEqual(1e-4 * refLargest);
      expect(r.baseMetric).toBeCloseTo(ref.clean_metric, 5);
      expect(r.patchedMetric).toBeCloseTo(ref.corrupted_metric, 5);
    });
  }

  it('EAP in two forward passes and one backward pass, in chunks too', () => {
    const r = eap({ model, graph, data }, { metric: 'logit-diff' });
    expect([r.forwardPasses, r.backwardPasses]).toEqual([2, 1]);
    const chunked = eap({ model, graph, data }, { metric: 'logit-diff', batchSize: 5 });
    expect([chunked.forwardPasses, chunked.backwardPasses]).toEqual([8, 4]);
    expect(relDiff(graph, chunked.scores, r.scores)).toBeLessThan(1e-5);
  });

  // The masked engine's gradient is DESIGN.md's definition; the hand-rolled paths must agree with it
  // in every direction, ablation and metric.
  const variants: AttributionOptions[] = [
    { metric: 'logit-diff', direction: 'denoise' },
    { metric: 'prob', ablation: 'zero' },
    { metric: 'logprob', ablation: 'mean', direction: 'denoise', batchSize: 6 },
    { metric: 'kl', direction: 'denoise' },
  ];
  for (const v of variants) {
    it(`fused and split EAP equal minus the mask gradient: ${JSON.stringify(v)}`, () => {
      const mask = eap({ model, graph, data }, { ...v, gradient: 'mask' });
      const fused = eap({ model, graph, data }, { ...v, gradient: 'fused' });
      const split = eap({ model, graph, data }, { ...v, gradient: 'split' });
      const largest = Math.max(...graph.edges.map((e) => Math.abs(mask.scores[e.index])));
      expect(largest).toBeGreaterThan(1e-4); // not vacuous
      expect(relDiff(graph, fused.scores, mask.scores)).toBeLessThan(1e-4);
      expect(relDiff(graph, split.scores, mask.scores)).toBeLessThan(1e-4);
      expect(fused.baseMetric).toBeCloseTo(mask.baseMetric, 5);
    });
  }

  it('reuses a Patcher: same scores, no extra forward pass for the caches', () => {
    const patcher = new Patcher(model, graph, data, { metric: 'logit-diff', direction: 'denoise', ablation: 'mean' });
    try {
      const before = tf.memory().numTensors;
      const viaPatcher = eap({ patcher });
      expect([viaPatcher.forwardPasses, viaPatcher.backwardPasses]).toEqual([1, 1]);
      const ig = eapIg({ patcher }, { steps: 3 });
      expect(tf.memory().numTensors).toBe(before);
      const direct = eap({ model, graph, data }, { metric: 'logit-diff', direction: 'denoise', ablation: 'mean' });
      expect(relDiff(graph, viaPatcher.scores, direct.scores)).toBeLessThan(1e-4);
      const igDirect = eapIg({ model, graph, data }, { metric: 'logit-diff', direction: 'denoise', ablation: 'mean', steps: 3 });
      expect(relDiff(graph, ig.scores, igDirect.scores)).toBeLessThan(1e-4);
      expect(() => eap({ patcher }, { metric: 'prob' })).toThrow(/differs from the Patcher/);
    } finally {
      patcher.dispose();
    }
  });

  it('EAP-IG and EAP-IG on activations with one step are EAP', () => {
    const base = eap({ model, graph, data }, { metric: 'logit-diff' });
    const ig1 = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 1, interpolation: 'run' });
    const act1 = eapIgActivations({ model, graph, data }, { metric: 'logit-diff', steps: 1 });
    expect(relDiff(graph, ig1.scores, base.scores)).toBeLessThan(1e-5);
    expect(relDiff(graph, act1.scores, base.scores)).toBeLessThan(1e-4);
  });

  it('EAP-IG gives the same scores with its steps stacked in one pass or run one by one', () => {
    const one = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 4, stepBatch: 1, interpolation: 'run' });
    const stacked = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 4, stepBatch: 3, batchSize: 10, interpolation: 'run' });
    expect([one.forwardPasses, one.backwardPasses]).toEqual([5, 4]);
    expect([stacked.forwardPasses, stacked.backwardPasses]).toEqual([2 * 3, 2 * 2]);
    expect(relDiff(graph, stacked.scores, one.scores)).toBeLessThan(1e-5);
  });

  it('runs a chunk in gradient passes of fewer prompts (passPrompts) with the same scores, metric and pass counts', () => {
    for (const [method, extra] of [['eap', {}], ['eap-ig', { steps: 3 }]] as const) {
      for (const metric of ['logit-diff', 'kl'] as const) {
        const opts = { metric, direction: 'denoise' as const, batchSize: 10, ...extra };
        const whole = attributeEdges({ model, graph, data }, method, opts);
        const ticks: number[] = [];
        const parts = attributeEdges({ model, graph, data }, method, { ...opts, passPrompts: 3, onProgress: (done) => ticks.push(done) });
        const what = `${method} ${metric}`;
        expect(relDiff(graph, parts.scores, whole.scores), what).toBeLessThan(1e-5);
        expect(parts.baseMetric, what).toBeCloseTo(whole.baseMetric, 5);
        expect(parts.patchedMetric, what).toBeCloseTo(whole.patchedMetric!, 5);
        expect([parts.forwardPasses, parts.backwardPasses], what).toEqual([whole.forwardPasses, whole.backwardPasses]);
        // progress moves per chunk, as without parts: the 2 chunks' steps
        expect(ticks, what).toEqual(Array.from({ length: 2 * (method === 'eap' ? 1 : 3) }, (_, i) => i + 1));
      }
    }
    const before = tf.memory().numTensors;
    const patcher = new Patcher(model, graph, data, { metric: 'logit-diff', batchSize: 10 });
    try {
      // the parts read their columns of the Patcher's cached sources
      const viaPatcher = eap({ patcher }, { passPrompts: 4 });
      expect(relDiff(graph, viaPatcher.scores, eap({ patcher }).scores)).toBeLessThan(1e-5);
      const igParts = eapIg({ patcher }, { steps: 3, passPrompts: 4 });
      expect(relDiff(graph, igParts.scores, eapIg({ patcher }, { steps: 3 }).scores)).toBeLessThan(1e-5);
    } finally {
      patcher.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => eap({ model, graph, data }, { metric: 'logit-diff', passPrompts: 0 })).toThrow(/passPrompts: expected a positive integer, got 0/);
  });

  it('EAP-IG differs from EAP on this nonlinear model, and obeys completeness as m grows', () => {
    const base = eap({ model, graph, data }, { metric: 'logit-diff' });
    const igs = [2, 8, 32].map((steps) => eapIg({ model, graph, data }, { metric: 'logit-diff', steps }));
    expect(relDiff(graph, igs[1].scores, base.scores)).toBeGreaterThan(0.1);
    // Σ_d score(input->d) = (x_patch − x_run) · mean_α ∇_x M(x(α))  →  M(patch) − M(run)
    const target = ref.corrupted_metric - ref.clean_metric;
    const inputSum = (r: EdgeAttribution) => graph.edges.filter((e) => e.src === 0).reduce((s, e) => s + r.scores[e.index], 0);
    const errors = igs.map((r) => Math.abs(inputSum(r) - target));
    expect(errors[2]).toBeLessThan(errors[1]);
    expect(errors[1]).toBeLessThan(errors[0]);
    expect(errors[2]).toBeLessThan(0.03 * Math.abs(target));
    expect(Math.abs(inputSum(base) - target)).toBeGreaterThan(5 * errors[2]);
  });

  it('EAP-IG on activations obeys completeness over all edges as m grows', () => {
    const patcher = new Patcher(model, graph, data, { metric: 'logit-diff' });
    try {
      const total = (r: EdgeAttribution) => graph.edges.reduce((s, e) => s + r.scores[e.index], 0);
      const target = patcher.corruptedMetric - patcher.cleanMetric; // every mask at 0 is the corrupted run
      // a right Riemann sum: the error falls as 1/m
      const errors = [4, 32].map((steps) => Math.abs(total(eapIgActivations({ patcher }, { steps })) - target));
      expect(errors[1]).toBeLessThan(errors[0] / 6);
      expect(errors[1]).toBeLessThan(0.06 * Math.abs(target));
      expect(Math.abs(total(eap({ patcher })) - target)).toBeGreaterThan(20 * errors[1]);
    } finally {
      patcher.dispose();
    }
  });

  for (const v of [{ direction: 'noise', ablation: 'patch' }, { direction: 'denoise', ablation: 'mean' }] as const) {
    it(`node attribution is the node-level sum of EAP edge scores (${v.direction}, ${v.ablation})`, () => {
      const edges = eap({ model, graph, data }, { metric: 'logit-diff', ...v });
      const nodes = attributeNodes(model, data, { metric: 'logit-diff', neurons: true, ...v });
      const s = (pred: (e: (typeof graph.edges)[number]) => boolean) => graph.edges.filter(pred).reduce((acc, e) => acc + edges.scores[e.index], 0);
      const tol = 1e-4 * Math.max(...graph.edges.map((e) => Math.abs(edges.scores[e.index])));
      // a source node's estimate = Σ of its outgoing edges (its output reaches every later input once)
      graph.sources.forEach((src, si) => {
        const node = src.kind === 'input' ? nodes.input : src.kind === 'head' ? nodes.heads[src.layer * 4 + src.head] : nodes.mlps[src.layer];
        expect(Math.abs(node - s((e) => e.src === si)), src.name).toBeLessThan(tol);
      });
      // the residual stream before layer l = Σ of the edges that cross it
      const p = nodes.seqLen;
      for (let l = 0; l <= 2; l++) {
        const row = Array.from(nodes.resid.slice(l * p, (l + 1) * p)).reduce((a, b) => a + b, 0);
        const crossing = s((e) => graph.sources[e.src].layer < l && graph.destinations[e.dst].layer >= l);
        expect(Math.abs(row - crossing), `resid ${l}`).toBeLessThan(tol);
      }
      // neurons sum to their MLP (the MLP output is linear in hook_post)
      for (let l = 0; l < 2; l++) {
        const sum = Array.from(nodes.neurons!.slice(l * 256, (l + 1) * 256)).reduce((a, b) => a + b, 0);
        expect(Math.abs(sum - nodes.mlps[l])).toBeLessThan(tol);
      }
      const forGraph = nodeScoresForGraph(nodes, graph);
      expect(forGraph[graph.sourceIndex('a1.h2')]).toBe(nodes.heads[1 * 4 + 2]);
      expect(Number.isNaN(forGraph[graph.nSrc])).toBe(true);
    });
  }

  it('node attribution by position puts the effect where clean and corrupted differ', () => {
    const nodes = attributeNodes(model, data, { metric: 'logit-diff' });
    // the fixture's prompts differ only at position 4: the embeddings elsewhere are the same
    const p = nodes.seqLen;
    for (let i = 0; i < p; i++) if (i !== 4) expect(nodes.resid[i]).toBe(0);
    expect(Math.abs(nodes.resid[4])).toBeGreaterThan(1e-3);
    expect(nodes.baseMetric).toBeCloseTo(ref.clean_metric, 5);
  });

  it('leaves no tensors behind', () => {
    eap({ model, graph, data }, { metric: 'kl', direction: 'denoise', batchSize: 7 });
    const before = tf.memory().numTensors;
    eap({ model, graph, data }, { metric: 'logit-diff', batchSize: 5 });
    eap({ model, graph, data }, { metric: 'kl', gradient: 'split', ablation: 'zero', batchSize: 7 });
    eap({ model, graph, data }, { metric: 'prob', ablation: 'mean', batchSize: 5 });
    eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 3, batchSize: 5 });
    attributeNodes(model, data, { metric: 'kl', ablation: 'mean', neurons: true, batchSize: 5 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('warns that noising EAP with KL vanishes (the gradient of KL is zero at the clean run)', () => {
    const r = eap({ model, graph, data }, { metric: 'kl' });
    expect(r.warnings.join(' ')).toMatch(/zero gradient at the clean run/);
    expect(Math.max(...graph.edges.map((e) => Math.abs(r.scores[e.index])))).toBeLessThan(1e-5);
    const ig = eapIg({ model, graph, data }, { metric: 'kl', steps: 3 });
    expect(ig.warnings).toEqual([]);
    expect(Math.max(...graph.edges.map((e) => Math.abs(ig.scores[e.index])))).toBeGreaterThan(1e-3);
  });

  it('rejects bad options with clear errors', () => {
    const input = { model, graph, data };
    expect(() => eap(input, {})).toThrow(/needs a metric/);
    expect(() => eap(input, { metric: 'accuracy' })).toThrow(/piecewise constant/);
    expect(() => eapIg(input, { metric: 'logit-diff', steps: 0 })).toThrow(/steps: expected an integer/);
    expect(() => eapIg(input, { metric: 'logit-diff', gradient: 'mask' })).toThrow(CircuitryError);
    expect(() => attributeEdges(input, 'acdc', { metric: 'logit-diff' })).toThrow(/unknown method 'acdc'.*eap, eap-ig, eap-ig-activations/);
    expect(() => attributeEdges(input, 'eap', { metric: 'logit-diff', steps: 4 })).toThrow(/takes no integration steps/);
    const small = new CircuitGraph({ nLayers: 1, nHeads: 4, hasMlp: true, qkv: true });
    expect(() => eap({ model, graph: small, data }, { metric: 'logit-diff' })).toThrow(/does not fit the model/);
    expect(() => eap({ model, graph, data: { ...data, corrupted: data.corrupted.slice(1) } }, { metric: 'logit-diff' })).toThrow(/one entry per example/);
  });

  it('scores node-granularity graphs (a head is one destination: the sum of its q, k and v edges)', () => {
    const nodeGraph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: false });
    const coarse = eap({ model, graph: nodeGraph, data }, { metric: 'logit-diff' });
    const mask = eap({ model, graph: nodeGraph, data }, { metric: 'logit-diff', gradient: 'mask' });
    expect(relDiff(nodeGraph, coarse.scores, mask.scores)).toBeLessThan(1e-4);
    const e = nodeGraph.edge('a0.h1->a1.h3');
    const parts = ['q', 'k', 'v'].reduce((s, k) => s + ref.edges[`a0.h1->a1.h3<${k}>`].eap, 0);
    expect(Math.abs(coarse.scores[e.index] - parts)).toBeLessThan(1e-4 * refLargest);
  });
});
