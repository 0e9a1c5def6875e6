import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import type { Transformer } from '../src/model/transformer.js';
import { type HookFn, type HookName, blockHook } from '../src/model/hooks.js';
import { MetricTargets, metricMean } from '../src/metrics/index.js';
import { Patcher, type Direction, type PairData } from '../src/patching/patcher.js';
import { pathEdges, pathPatch, pathPatchMany, verifyEdges } from '../src/patching/path-patching.js';
import { CircuitryError } from '../src/errors.js';
import { TINY, readJson } from './helpers/fixtures.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';

const ref = readJson<{ clean_metric: number; corrupted_metric: number; edges: Record<string, { exact_patch_delta: number }> }>(TINY, 'edges.json');
const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.exact_patch_delta)));

/** [b, p, H, …] with heads `heads` taken from `other`. */
function withHeads(act: tf.Tensor, other: tf.Tensor, heads: readonly number[]): tf.Tensor {
  const H = (act.shape as number[])[2];
  const parts: tf.Tensor[] = Array.from({ length: H }, (_unused, h) => {
    const begin = act.shape.map((_, i) => (i === 2 ? h : 0));
    const size = act.shape.map((n, i) => (i === 2 ? 1 : n));
    return tf.slice(heads.includes(h) ? other : act, begin, size);
  });
  return tf.concat(parts, 2);
}

type Receiver = { hook: HookName; heads?: number[] }; // heads: which heads of a [b, p, H, d] input; none: the whole activation

/**
 * Path patching as Wang et al. (2022) describe it, with hooks only. Step 1: run the base prompts
 * with the senders' outputs taken from the other run and every other head and MLP frozen at its
 * base value; record the receivers' inputs. Step 2: run the base prompts again with only the
 * receivers' inputs replaced by those records. Returns the metric (batch mean).
 */
function wangPathPatch(model: Transformer, data: PairData, direction: Direction, senders: [number, number][], receivers: Receiver[]): number {
  const base = direction === 'noise' ? data.clean : data.corrupted;
  const source = direction === 'noise' ? data.corrupted : data.clean;
  const L = model.cfg.nLayers;
  const outputs: HookName[] = [];
  for (let l = 0; l < L; l++) outputs.push(blockHook(l, 'attn.hook_result'), blockHook(l, 'hook_mlp_out'));
  const baseRun = model.runWithCache(base, outputs);
  const otherRun = model.runWithCache(source, outputs);
  const step1 = new Map<HookName, HookFn>();
  for (let l = 0; l < L; l++) {
    const mine = senders.filter(([sl]) => sl === l).map(([, h]) => h);
    step1.set(blockHook(l, 'attn.hook_result'), () => withHeads(baseRun.cache.get(blockHook(l, 'attn.hook_result'))!, otherRun.cache.get(blockHook(l, 'attn.hook_result'))!, mine));
    step1.set(blockHook(l, 'hook_mlp_out'), () => baseRun.cache.get(blockHook(l, 'hook_mlp_out'))!.clone());
  }
  const recorded = model.runWithCache(base, receivers.map((r) => r.hook), { hooks: step1 });
  const step2 = new Map<HookName, HookFn>(
    receivers.map((r) => [r.hook, (act: tf.Tensor) => (r.heads ? withHeads(act, recorded.cache.get(r.hook)!, r.heads) : recorded.cache.get(r.hook)!.clone())]),
  );
  const targets = new MetricTargets(data.answers, data.wrongs, model.cfg.dVocab);
  const value = tf.tidy(() => metricMean('logit-diff', model.forward(base, { hooks: step2 }), targets).dataSync()[0]);
  for (const run of [baseRun, otherRun, recorded]) {
    run.logits.dispose();
    run.cache.forEach((t) => t.dispose());
  }
  targets.dispose();
  return value;
}

describe('path patching on tiny-gpt2', () => {
  let model: Transformer;
  let data: PairData;
  const graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
  let noise: Patcher;
  let denoise: Patcher;
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadTinyModel();
    data = loadTinyData();
    noise = new Patcher(model, graph, data, { metric: 'logit-diff', direction: 'noise' });
    denoise = new Patcher(model, graph, data, { metric: 'logit-diff', direction: 'denoise' });
  });
  afterAll(() => {
    noise.dispose();
    denoise.dispose();
    model.dispose();
  });

  it('verifyEdges gives the exact single-edge effects of the fixture, stacked or one edge per pass', () => {
    const top = Object.entries(ref.edges).sort((a, b) => Math.abs(b[1].exact_patch_delta) - Math.abs(a[1].exact_patch_delta)).slice(0, 12).map(([n]) => n);
    // reversed so that the order given is not the canonical one
    const names = [...top].reverse();
    const before = noise.forwardPasses;
    const progress: number[][] = [];
    const effects = verifyEdges(noise, names, { onProgress: (d, t) => progress.push([d, t]) });
    const stackedPasses = noise.forwardPasses - before;
    expect(effects.map((e) => e.edge)).toEqual(names);
    for (const e of effects) {
      expect(Math.abs(e.delta - ref.edges[e.edge].exact_patch_delta), e.edge).toBeLessThan(1e-4 * largest);
      expect(e.metric).toBeCloseTo(noise.cleanMetric + e.delta, 6);
      expect(e.recovery).toBeCloseTo((e.metric - noise.corruptedMetric) / (noise.cleanMetric - noise.corruptedMetric), 5);
    }
    expect(progress[0]).toEqual([0, 12]);
    expect(progress.at(-1)).toEqual([12, 12]);

    const onePerPass = new Patcher(model, graph, data, { metric: 'logit-diff', direction: 'noise', stackBudget: 1 });
    try {
      const single = verifyEdges(onePerPass, names);
      expect(onePerPass.forwardPasses).toBe(12);
      expect(stackedPasses).toBeLessThan(12);
      single.forEach((s, i) => expect(Math.abs(s.metric - effects[i].metric), s.edge).toBeLessThan(1e-5));
    } finally {
      onePerPass.dispose();
    }
  });

  it('progress reports cost no extra forward passes', () => {
    const four = { clean: data.clean.slice(0, 4), corrupted: data.corrupted.slice(0, 4), answers: data.answers.slice(0, 4), wrongs: data.wrongs.slice(0, 4) };
    const p = new Patcher(model, graph, four, { metric: 'logit-diff', direction: 'noise' });
    try {
      const names = graph.edges.map((e) => e.name);
      const plain = verifyEdges(p, names);
      const plainPasses = p.forwardPasses;
      const calls: number[] = [];
      const reported = verifyEdges(p, names, { onProgress: (d) => calls.push(d) });
      expect(p.forwardPasses - plainPasses).toBe(plainPasses);
      expect(calls.length).toBeGreaterThan(2);
      expect(calls.at(-1)).toBe(names.length);
      reported.forEach((r, i) => expect(r.metric).toBeCloseTo(plain[i].metric, 6));
    } finally {
      p.dispose();
    }
  });

  it('a0.h0 -> m1 equals the single edge a0.h0->m1 and the two-step path patching of Wang et al.', () => {
    const r = pathPatch(noise, ['a0.h0'], ['m1']);
    expect(r.edges).toEqual(['a0.h0->m1']);
    expect(Math.abs(r.delta - ref.edges['a0.h0->m1'].exact_patch_delta)).toBeLessThan(1e-4 * largest);
    const wang = wangPathPatch(model, data, 'noise', [[0, 0]], [{ hook: 'blocks.1.hook_mlp_in' }]);
    expect(Math.abs(r.metric - wang)).toBeLessThan(2e-5);
    expect(Math.abs(r.delta)).toBeGreaterThan(1e-3); // a real effect, not a trivially equal pair
  });

  it('two senders into two heads (all inputs, and one input) match the two-step path patching, both directions', () => {
    for (const [direction, p] of [['noise', noise], ['denoise', denoise]] as const) {
      const r = pathPatch(p, ['a0.h0', 'a0.h2'], ['a1.h1', 'a1.h3<k>']);
      expect(r.edges).toEqual(['a0.h0->a1.h1<q>', 'a0.h2->a1.h1<q>', 'a0.h0->a1.h1<k>', 'a0.h2->a1.h1<k>', 'a0.h0->a1.h1<v>', 'a0.h2->a1.h1<v>', 'a0.h0->a1.h3<k>', 'a0.h2->a1.h3<k>']);
      const wang = wangPathPatch(model, data, direction, [[0, 0], [0, 2]], [
        { hook: 'blocks.1.hook_q_input', heads: [1] },
        { hook: 'blocks.1.hook_k_input', heads: [1, 3] },
        { hook: 'blocks.1.hook_v_input', heads: [1] },
      ]);
      expect(Math.abs(r.metric - wang), direction).toBeLessThan(2e-5);
      expect(Math.abs(r.delta)).toBeGreaterThan(1e-3);
    }
    // inputs: only the values of a1.h1
    const v = pathPatch(noise, ['a0.h0'], ['a1.h1'], { inputs: ['v'] });
    expect(v.edges).toEqual(['a0.h0->a1.h1<v>']);
    expect(v.metric).toBeCloseTo(pathPatch(noise, ['a0.h0'], ['a1.h1<v>']).metric, 6);
    expect(Math.abs(v.metric - wangPathPatch(model, data, 'noise', [[0, 0]], [{ hook: 'blocks.1.hook_v_input', heads: [1] }]))).toBeLessThan(2e-5);
  });

  it('senders reach the logits directly; pathPatchMany batches several experiments', () => {
    const specs = [
      { senders: ['a0.h0'], receivers: ['logits'] },
      { senders: ['m0', 'a1.h1'], receivers: ['logits'] },
      { senders: ['input'], receivers: ['a0.h0'], inputs: ['q', 'k'] as const },
    ];
    const before = noise.forwardPasses;
    const many = pathPatchMany(noise, specs);
    expect(noise.forwardPasses - before).toBeLessThan(specs.length);
    specs.forEach((s, i) => expect(many[i].metric).toBeCloseTo(pathPatch(noise, s.senders, s.receivers, s).metric, 6));
    // the direct path a0.h0 -> logits only: by hand, the final residual gets a0.h0's corrupted output
    const wang = wangPathPatch(model, data, 'noise', [[0, 0]], [{ hook: 'blocks.1.hook_resid_post' }]);
    expect(Math.abs(many[0].metric - wang)).toBeLessThan(2e-5);
    expect(Math.abs(many[0].delta - ref.edges['a0.h0->logits'].exact_patch_delta)).toBeLessThan(1e-4 * largest);
  });

  it('a node-level graph (no q/k/v split) patches all three inputs of a head receiver', () => {
    const nodeGraph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: false });
    const p = new Patcher(model, nodeGraph, data, { metric: 'logit-diff', direction: 'noise' });
    try {
      const r = pathPatch(p, ['a0.h0', 'm0'], ['a1.h2']);
      expect(r.edges).toEqual(['a0.h0->a1.h2', 'm0->a1.h2']);
      expect(r.metric).toBeCloseTo(pathPatch(noise, ['a0.h0', 'm0'], ['a1.h2']).metric, 5);
      expect(() => pathPatch(p, ['a0.h0'], ['a1.h2<q>'])).toThrow(/unknown receiver 'a1.h2<q>'.*no <q>\/<k>\/<v>/);
    } finally {
      p.dispose();
    }
  });

  it('names the problem with bad senders, receivers, inputs and edges', () => {
    expect(() => pathPatch(noise, ['a0.h9'], ['m1'])).toThrow(/unknown source node 'a0.h9'/);
    expect(() => pathPatch(noise, ['a0.h0'], ['m7'])).toThrow(/unknown receiver 'm7'/);
    expect(() => pathPatch(noise, ['a1.h0'], ['a0.h1', 'm0'])).toThrow(/no edge leads from \{a1.h0\} to \{a0.h1, m0\}/);
    expect(() => pathPatch(noise, [], ['m1'])).toThrow(CircuitryError);
    expect(() => pathPatch(noise, ['a0.h0'], ['a1.h1'], { inputs: [] })).toThrow(/at least one of q, k, v/);
    expect(() => verifyEdges(noise, ['a0.h0->a0.h1<q>'])).toThrow(/unknown edge 'a0.h0->a0.h1<q>'/);
    // pairs the graph does not connect are skipped when others remain
    expect(pathEdges(graph, ['a1.h0'], ['a0.h1', 'logits']).map((e) => e.name)).toEqual(['a1.h0->logits']);
  });
});
