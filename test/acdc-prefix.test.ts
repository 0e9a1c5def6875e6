import { describe, it, expect, beforeAll, vi } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { graphForModel } from '../src/graph/graph.js';
import { type MaskEvaluator, type PairData, Patcher } from '../src/patching/patcher.js';
import { runAcdc } from '../src/discovery/acdc.js';
import { loadModel } from '../src/model/load.js';
import { resolveDataset } from '../src/discovery/data.js';
import { screenEdges } from '../src/discovery/screen.js';
import { randomFamilyModel } from './helpers/random-family.js';
import { TestRng } from './helpers/attribution-models.js';

/**
 * A base mask (Patcher.setBaseMask, what ACDC sets to its circuit) lets a mask that agrees with
 * it below layer l start at l from the base mask's cached run. The values must be those of full
 * passes from layer 0, on every family (parallel blocks, grouped queries, heads inside Gemma's
 * post-attention norm).
 */
const FAMILIES: Record<string, Record<string, unknown>> = {
  gpt2: { model_type: 'gpt2', n_layer: 3, n_head: 4, n_embd: 48, vocab_size: 97, n_positions: 64 },
  'neox (parallel)': { model_type: 'gpt_neox', num_hidden_layers: 3, num_attention_heads: 4, hidden_size: 48, intermediate_size: 96, vocab_size: 97, rotary_pct: 0.5, use_parallel_residual: true },
  'llama (grouped queries)': { model_type: 'llama', num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, hidden_size: 48, intermediate_size: 80, vocab_size: 97 },
  'gemma2 (heads inside a norm)': {
    model_type: 'gemma2', num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, hidden_size: 48, head_dim: 12, intermediate_size: 64, vocab_size: 97,
    query_pre_attn_scalar: 12, attn_logit_softcapping: 50, final_logit_softcapping: 30, sliding_window: 4,
  },
};

function randomPairs(rng: TestRng, n: number, p: number, V: number): PairData {
  const tok = () => rng.int(V);
  const clean = Array.from({ length: n }, () => Array.from({ length: p }, tok));
  // the corrupted prompt differs at two positions
  const corrupted = clean.map((row) => row.map((t, i) => (i === 1 || i === p - 3 ? (t + 1 + (i % 5)) % V : t)));
  return { clean, corrupted, answers: clean.map(() => [tok()]), wrongs: clean.map(() => [tok()]) };
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('masks evaluated from a base mask’s cached run equal full passes', () => {
  for (const [family, config] of Object.entries(FAMILIES)) {
    it(family, async () => {
      const model = randomFamilyModel(config, 3);
      const rng = new TestRng(11);
      const graph = graphForModel(model.cfg);
      const data = randomPairs(rng, 6, 7, model.cfg.dVocab);
      const patcher = new Patcher(model, graph, data, { metric: 'logit-diff', batchSize: 4 });
      try {
        // the base patches a random third of the edges; each mask patches more at layer ≥ l
        const base = patcher.fullMask();
        for (const e of graph.edges) if (rng.next() < 0.33) base[e.index] = 0;
        const masks: Float32Array[] = [];
        for (const layer of [1, 2, 3]) {
          for (let k = 0; k < 3; k++) {
            const m = Float32Array.from(base);
            const above = graph.edges.filter((e) => graph.destinations[e.dst].layer >= layer);
            for (const e of above) if (rng.next() < 0.2) m[e.index] = 1 - m[e.index];
            masks.push(m);
          }
        }
        const full = await patcher.evaluateAsync(masks);
        const spy = vi.spyOn(patcher.engine, 'maskedForward');
        patcher.setBaseMask(base);
        const fromBase = await patcher.evaluateAsync(masks);
        const starts = spy.mock.calls.map(([a]) => a.startAtLayer ?? 0);
        spy.mockRestore();
        expect(Math.max(...starts)).toBe(model.cfg.nLayers - 1); // logits-only changes start at the last block
        expect(starts.filter((s) => s > 0).length).toBeGreaterThan(0);
        const scale = Math.max(...full.map(Math.abs));
        expect(scale).toBeGreaterThan(1e-3);
        fromBase.forEach((v, i) => expect(Math.abs(v - full[i])).toBeLessThanOrEqual(2e-5 * Math.max(1, scale)));
        // freed: the same masks run from the unpatched run again
        patcher.setBaseMask(undefined);
        expect(await patcher.evaluateAsync(masks)).toEqual(full);
      } finally {
        patcher.dispose();
        model.dispose();
      }
    });
  }
});

describe('ACDC over candidates', () => {
  it('decides every edge as full passes do, with fewer layers run', async () => {
    const loaded = await loadModel('mini-gpt2');
    const data = resolveDataset(loaded, { task: { name: 'ioi', n: 16, seed: 2, options: {} } });
    const graph = graphForModel(loaded.model.cfg);
    const patcher = new Patcher(loaded.model, graph, data, { metric: 'logit-diff', batchSize: 8 });
    try {
      const scores = await screenEdges(patcher, 'eap', 1);
      const candidates = [...graph.edges].sort((x, y) => Math.abs(scores[y.index]) - Math.abs(scores[x.index])).slice(0, 30).map((e) => e.name);
      const tau = 0.02 * Math.abs(patcher.cleanMetric - patcher.corruptedMetric);
      // the same patcher without a base mask: every pass from the first patched layer (0 here)
      const plain: MaskEvaluator = Object.assign(Object.create(patcher) as Patcher, { setBaseMask: () => {} });
      const spy = vi.spyOn(patcher.engine, 'maskedForward');
      const a = await runAcdc(plain, { tau, candidates, faith: 'abs-diff' });
      const L = loaded.model.cfg.nLayers;
      // copies × layers run, over the patcher's passes (host masks; the engine calls itself again with tensors)
      const passes = () => spy.mock.calls.map(([x]) => x).filter((x) => Array.isArray(x.masks));
      const work = () => passes().reduce((n, x) => n + (x.masks as Float32Array[]).length * (L - (x.startAtLayer ?? 0)), 0);
      const plainStarts = passes().map((x) => x.startAtLayer ?? 0);
      const plainWork = work();
      spy.mockClear();
      const b = await runAcdc(patcher, { tau, candidates, faith: 'abs-diff' });
      const baseRuns = passes().filter((x) => x.observe !== undefined).length;
      const baseWork = work();
      spy.mockRestore();
      expect(b.steps.map((s) => [s.edge, s.removed])).toEqual(a.steps.map((s) => [s.edge, s.removed]));
      b.steps.forEach((s, i) => expect(Math.abs(s.metric_if_removed - a.steps[i].metric_if_removed)).toBeLessThanOrEqual(1e-5));
      expect(b.kept).toEqual(a.kept);
      expect(a.steps.some((s) => !s.removed) && a.steps.some((s) => s.removed)).toBe(true);
      expect(plainStarts.every((s) => s === 0)).toBe(true);
      expect(baseRuns).toBe(2); // the circuit's run of each chunk, once
      expect(baseWork).toBeLessThan(0.8 * plainWork);
    } finally {
      patcher.dispose();
      loaded.model.dispose();
    }
  });
});
