import { describe, it, expect, beforeAll } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { eap, eapIg, eapIgActivations } from '../src/attribution/index.js';
import { randomModel, randomPairs } from './helpers/attribution-models.js';

/**
 * In a LayerNorm-free, attention-only model whose queries are zero, every attention pattern is
 * uniform whatever the input, so the logits are affine in the embeddings and logit-diff is linear
 * in every destination input: the gradient is the same everywhere. Then EAP-IG equals EAP for any
 * m, and both equal exact single-edge patching. With queries the same model is nonlinear and
 * they part (the control that shows the comparison can fail). EAP-IG on activations (masks
 * interpolated) follows a different path and does not reduce to EAP here.
 */
function maxRel(graph: CircuitGraph, a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let largest = 0;
  for (const e of graph.edges) {
    worst = Math.max(worst, Math.abs(a[e.index] - b[e.index]));
    largest = Math.max(largest, Math.abs(b[e.index]));
  }
  return worst / largest;
}

describe('EAP-IG on a model where the metric is linear', () => {
  const graph = new CircuitGraph({ nLayers: 2, nHeads: 2, hasMlp: false, qkv: true });
  const data = randomPairs(6, 5, 24, 3, 2);
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('EAP-IG (inputs, any m) equals EAP, which equals exact patching', () => {
    const model = randomModel({ nLayers: 2, nHeads: 2, dModel: 16, dVocab: 24, attnOnly: true, normalization: 'none', zeroQueries: true, seed: 5 });
    const patcher = new Patcher(model, graph, data, { metric: 'logit-diff' });
    try {
      const base = eap({ patcher });
      const largest = Math.max(...graph.edges.map((e) => Math.abs(base.scores[e.index])));
      expect(largest).toBeGreaterThan(1e-2);
      const exact = patcher.evaluate(graph.edges.map((e) => {
        const m = patcher.fullMask();
        m[e.index] = 0;
        return m;
      }));
      const exactDense = new Float32Array(graph.denseSize);
      graph.edges.forEach((e, i) => (exactDense[e.index] = exact[i] - patcher.cleanMetric));
      expect(maxRel(graph, base.scores, exactDense)).toBeLessThan(2e-4);
      for (const steps of [2, 5]) {
        expect(maxRel(graph, eapIg({ patcher }, { steps }).scores, base.scores), `eap-ig m=${steps}`).toBeLessThan(2e-4);
      }
      // Interpolating masks is not interpolating inputs: at m_k < 1 every edge carries only m_k of
      // its source's current output, so both the source differences (patch_u − current_u) and the
      // gradients downstream move along the path, and M is a polynomial in m even here. The one
      // edge with neither effect is input->logits: it keeps EAP's score, the others do not.
      const act = eapIgActivations({ patcher }, { steps: 3 });
      const direct = graph.edge('input->logits').index;
      expect(Math.abs(act.scores[direct] - base.scores[direct])).toBeLessThan(2e-4 * largest);
      expect(maxRel(graph, act.scores, base.scores)).toBeGreaterThan(1e-2);
    } finally {
      patcher.dispose();
      model.dispose();
    }
  });

  it('control: with queries the model is nonlinear and EAP-IG departs from EAP', () => {
    const model = randomModel({ nLayers: 2, nHeads: 2, dModel: 16, dVocab: 24, attnOnly: true, normalization: 'none', seed: 5, std: 0.5 });
    try {
      const base = eap({ model, graph, data }, { metric: 'logit-diff' });
      const ig = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 5 });
      expect(maxRel(graph, ig.scores, base.scores)).toBeGreaterThan(1e-2);
    } finally {
      model.dispose();
    }
  });
});
