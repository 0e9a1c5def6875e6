import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { runAcdc } from '../src/discovery/acdc.js';
import { visitingOrder } from '../src/discovery/order.js';
import type { Transformer } from '../src/model/transformer.js';
import { TINY, readJson } from './helpers/fixtures.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';

interface AcdcFixture {
  tau: number;
  metric: 'kl' | 'logit_diff';
  order: 'auto-circuit';
  kept_edges: string[];
  steps: { edge: string; metric_if_removed: number; delta: number; removed: boolean }[];
}

const files = readdirSync(join(TINY, 'acdc')).filter((f) => f.endsWith('.json')).sort();

describe('ACDC on tiny-gpt2 against the fixtures', () => {
  let model: Transformer;
  const graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
  const patchers = new Map<string, Patcher>();
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadTinyModel();
    const data = loadTinyData();
    patchers.set('kl', new Patcher(model, graph, data, { metric: 'kl' }));
    patchers.set('logit-diff', new Patcher(model, graph, data, { metric: 'logit-diff' }));
  });
  afterAll(() => {
    patchers.forEach((p) => p.dispose());
    model.dispose();
  });

  it('finds all eight fixtures', () => expect(files.length).toBe(8));

  for (const file of files) {
    it(`${file}: every decision and the kept edge set`, async () => {
      const fx = readJson<AcdcFixture>(TINY, 'acdc', file);
      const result = await runAcdc(patchers.get(fx.metric === 'kl' ? 'kl' : 'logit-diff')!, { tau: fx.tau, order: fx.order });
      expect(result.steps.map((s) => s.edge)).toEqual(fx.steps.map((s) => s.edge));
      result.steps.forEach((s, i) => {
        expect(s.removed, `${s.edge} (delta ${s.delta} vs fixture ${fx.steps[i].delta})`).toBe(fx.steps[i].removed);
        expect(Math.abs(s.metric_if_removed - fx.steps[i].metric_if_removed)).toBeLessThan(2e-5);
      });
      expect([...result.kept].sort()).toEqual([...fx.kept_edges].sort());
    });
  }

  it('skipping edges into unused nodes and guessing which edges stay change no decision, only the passes', async () => {
    let skippedAny = false;
    for (const file of files) {
      const fx = readJson<AcdcFixture>(TINY, 'acdc', file);
      if (!(fx.tau > 0)) continue;
      const patcher = patchers.get(fx.metric === 'kl' ? 'kl' : 'logit-diff')!;
      const plain = await runAcdc(patcher, { tau: fx.tau, order: fx.order });
      // a deliberately poor guess: every edge stays
      const fast = await runAcdc(patcher, { tau: fx.tau, order: fx.order, skipUnused: true, expectKept: new Set(graph.edges.map((e) => e.name)) });
      expect(fast.steps.map((s) => [s.edge, s.removed])).toEqual(plain.steps.map((s) => [s.edge, s.removed]));
      expect(fast.kept).toEqual(plain.kept);
      const skipped = fast.steps.filter((s) => s.delta === 0);
      for (const s of skipped) expect(Math.abs(plain.steps.find((p) => p.edge === s.edge)!.delta), s.edge).toBeLessThan(1e-5);
      skippedAny ||= skipped.length > 0;
    }
    expect(skippedAny).toBe(true);
  });

  it('speculates only as far as one pass stacks: a patcher that stacks one mask wastes no pass on a wrong guess', async () => {
    const fx = readJson<AcdcFixture>(TINY, 'acdc', files.find((f) => {
      const x = readJson<AcdcFixture>(TINY, 'acdc', f);
      return x.metric === 'logit_diff' && x.tau > 0 && x.steps.some((s) => !s.removed);
    })!);
    const single = new Patcher(model, graph, loadTinyData(), { metric: 'logit-diff', stackBudget: 1 });
    try {
      expect(patchers.get('logit-diff')!.masksPerPass).toBeGreaterThanOrEqual(8);
      expect(single.masksPerPass).toBe(1);
      const guessing = await runAcdc(single, { tau: fx.tau, order: fx.order, speculate: 8 });
      const stepwise = await runAcdc(single, { tau: fx.tau, order: fx.order });
      expect(stepwise.steps).toEqual(guessing.steps);
      // per chunk: one pass for the starting faithfulness, at most one base run, one per decision
      expect(guessing.forwardPasses).toBeGreaterThan(2 * stepwise.forwardPasses);
      const chunks = single.chunkSizes.length;
      expect(stepwise.forwardPasses).toBeLessThanOrEqual(chunks * (2 + stepwise.steps.length));
    } finally {
      single.dispose();
    }
  });

  it('the acdc order visits logits first and each destination\'s later sources first', () => {
    const order = visitingOrder(graph, 'acdc');
    expect(order.map((g) => g.destination.name).slice(0, 5)).toEqual(['logits', 'm1', 'a1.h3<q>', 'a1.h3<k>', 'a1.h3<v>']);
    expect(order[0].edges.map((e) => e.name).slice(0, 3)).toEqual(['m1->logits', 'a1.h3->logits', 'a1.h2->logits']);
    expect(order.at(-1)!.edges.map((e) => e.name)).toEqual(['input->a0.h0<v>']);
  });
});
