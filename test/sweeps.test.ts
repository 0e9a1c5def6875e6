import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { configFromHf } from '../src/model/config.js';
import { gpt2WeightsFromTensors } from '../src/model/weights.js';
import { Transformer } from '../src/model/transformer.js';
import type { HookName } from '../src/model/hooks.js';
import type { HostTensor } from '../src/model/safetensors.js';
import { MetricTargets, metricMean } from '../src/metrics/index.js';
import { Patcher, type Ablation, type Direction, type PairData } from '../src/patching/patcher.js';
import { parseSweep, planSweep, runSweep, sweepToMeta, topComponents, type SweepResult } from '../src/patching/sweeps.js';
import { pathPatch } from '../src/patching/path-patching.js';
import { CircuitryError } from '../src/errors.js';
import { TINY, readJson } from './helpers/fixtures.js';
import { loadTinyData, loadTinyModel } from './helpers/tiny.js';

const ref = readJson<{ clean_metric: number; corrupted_metric: number; edges: Record<string, { exact_patch_delta: number }> }>(TINY, 'edges.json');

const byName = (r: SweepResult) => new Map(r.components.map((c) => [c.name, c]));

/** `act` with index `index` of `axis` taken from `other` (slices and a concat: no masks involved). */
function replaceAt(act: tf.Tensor, other: tf.Tensor, axis: number, index: number): tf.Tensor {
  const parts: tf.Tensor[] = [];
  const take = (t: tf.Tensor, from: number, to: number) => {
    if (to <= from) return;
    const begin = act.shape.map((_, i) => (i === axis ? from : 0));
    const size = act.shape.map((n, i) => (i === axis ? to - from : n));
    parts.push(tf.slice(t, begin, size));
  };
  take(act, 0, index);
  take(other, index, index + 1);
  take(act, index + 1, act.shape[axis]);
  return tf.concat(parts, axis);
}

/**
 * TransformerLens-style patching by hand: record `hook` on the source run, then run the base
 * prompts (all at once, one patch) with `edit(activation, recorded)` at that hook.
 */
function handPatch(model: Transformer, data: PairData, direction: Direction, hook: HookName, edit: (act: tf.Tensor, other: tf.Tensor) => tf.Tensor): number {
  const base = direction === 'noise' ? data.clean : data.corrupted;
  const source = direction === 'noise' ? data.corrupted : data.clean;
  const { logits: l0, cache } = model.runWithCache(source, [hook]);
  l0.dispose();
  const other = cache.get(hook)!;
  const targets = new MetricTargets(data.answers, data.wrongs, model.cfg.dVocab);
  const value = tf.tidy(() => metricMean('logit-diff', model.forward(base, { hooks: { [hook]: (act: tf.Tensor) => edit(act, other) } }), targets).dataSync()[0]);
  other.dispose();
  targets.dispose();
  return value;
}

describe('sweeps on tiny-gpt2', () => {
  let model: Transformer;
  let data: PairData;
  let graph: CircuitGraph;
  const patchers = new Map<string, Patcher>();
  const patcher = (direction: Direction, ablation: Ablation = 'patch', batchSize?: number) => {
    const key = `${direction}/${ablation}/${batchSize}`;
    if (!patchers.has(key)) patchers.set(key, new Patcher(model, graph, data, { metric: 'logit-diff', direction, ablation, batchSize }));
    return patchers.get(key)!;
  };

  beforeAll(async () => {
    await initBackend('wasm');
    model = loadTinyModel();
    data = loadTinyData();
    graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
  });
  afterAll(() => {
    patchers.forEach((p) => p.dispose());
    model.dispose();
  });

  it('the single-edge sweep equals the exact single-edge effects of the fixture, batched', () => {
    const p = patcher('noise');
    const r = runSweep(p, 'edges');
    const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.exact_patch_delta)));
    expect(r.components).toHaveLength(graph.nEdges);
    for (const c of r.components) {
      expect(Math.abs(c.delta - ref.edges[c.name].exact_patch_delta), c.name).toBeLessThan(1e-4 * largest);
      expect(c.metric).toBeCloseTo(ref.clean_metric + ref.edges[c.name].exact_patch_delta, 4);
      expect(c.recovery).toBeCloseTo((c.metric - ref.corrupted_metric) / (ref.clean_metric - ref.corrupted_metric), 4);
    }
    // 110 edges × 16 prompts stacked into far fewer passes than one per edge
    expect(r.forwardPasses).toBeGreaterThan(0);
    expect(r.forwardPasses).toBeLessThan(graph.nEdges / 10);
    console.log(`tiny-gpt2 single-edge sweep: ${r.components.length} edges in ${r.forwardPasses} forward pass(es)`);
    // the matrix view: destinations × sources, NaN where no edge exists
    const meta = sweepToMeta(r);
    const e = graph.edge('a0.h0->m1');
    expect(meta.rows[e.dst]).toBe('m1');
    expect(meta.cols[e.src]).toBe('a0.h0');
    expect(meta.recovery[e.dst][e.src]).toBe(byName(r).get('a0.h0->m1')!.recovery);
    expect(meta.recovery[graph.destinationIndex('a0.h0<q>')][graph.sourceIndex('m1')]).toBeNaN();
  });

  // component, its sweep, the hook, and the by-hand edit of that hook's activation
  const cases: [string, string, HookName, (a: tf.Tensor, o: tf.Tensor) => tf.Tensor][] = [
    ['blocks.0.hook_resid_pre@4', 'resid', 'blocks.0.hook_resid_pre', (a, o) => replaceAt(a, o, 1, 4)],
    ['blocks.1.hook_resid_pre@11', 'resid', 'blocks.1.hook_resid_pre', (a, o) => replaceAt(a, o, 1, 11)],
    ['blocks.0.hook_attn_out@11', 'attn-out', 'blocks.0.hook_attn_out', (a, o) => replaceAt(a, o, 1, 11)],
    ['blocks.1.hook_mlp_out@11', 'mlp-out', 'blocks.1.hook_mlp_out', (a, o) => replaceAt(a, o, 1, 11)],
    ['a0.h2', 'heads', 'blocks.0.attn.hook_z', (a, o) => replaceAt(a, o, 2, 2)],
    ['a1.h1', 'heads', 'blocks.1.attn.hook_z', (a, o) => replaceAt(a, o, 2, 1)],
    ['a0.h0@11', 'heads-by-pos', 'blocks.0.attn.hook_z', (a, o) => replaceAt(a, replaceAt(a, o, 2, 0), 1, 11)],
    ['a1.h3@7', 'heads-by-pos', 'blocks.1.attn.hook_z', (a, o) => replaceAt(a, replaceAt(a, o, 2, 3), 1, 7)],
    ['a1.h1<k>', 'qkv', 'blocks.1.attn.hook_k', (a, o) => replaceAt(a, o, 2, 1)],
    ['a0.h2<v>', 'qkv', 'blocks.0.attn.hook_v', (a, o) => replaceAt(a, o, 2, 2)],
    ['a0.h2.pattern', 'pattern', 'blocks.0.attn.hook_pattern', (a, o) => replaceAt(a, o, 1, 2)],
    ['m1.n132', 'neurons:1', 'blocks.1.mlp.hook_post', (a, o) => replaceAt(a, o, 2, 132)],
  ];

  for (const direction of ['denoise', 'noise'] as const) {
    it(`${direction}: sweeps agree with patching the hook by hand`, () => {
      const p = patcher(direction);
      const results = new Map<string, SweepResult>();
      for (const [name, kind, hook, edit] of cases) {
        if (!results.has(kind)) results.set(kind, runSweep(p, kind));
        const c = byName(results.get(kind)!).get(name);
        expect(c, name).toBeDefined();
        const expected = handPatch(model, data, direction, hook, edit);
        expect(Math.abs(c!.metric - expected), `${direction} ${name}`).toBeLessThan(2e-5);
        expect(c!.delta).toBeCloseTo(expected - p.baseMetric, 5);
        expect(c!.recovery).toBeCloseTo((expected - p.corruptedMetric) / (p.cleanMetric - p.corruptedMetric), 4);
      }
      // every component of a sweep, not just the sampled ones: the whole heads sweep by hand
      const heads = results.get('heads')!;
      expect(heads.rows).toEqual(['L0', 'L1']);
      expect(heads.cols).toEqual(['h0', 'h1', 'h2', 'h3']);
      for (const c of heads.components) {
        const [l, h] = [c.row, c.col];
        expect(c.name).toBe(`a${l}.h${h}`);
        expect(Math.abs(c.metric - handPatch(model, data, direction, `blocks.${l}.attn.hook_z`, (a, o) => replaceAt(a, o, 2, h)))).toBeLessThan(2e-5);
      }
      // patching the whole residual stream at the position where prompts differ moves the metric all the way
      const resid = byName(results.get('resid')!);
      const diffPos = data.clean[0].findIndex((t, i) => t !== data.corrupted[0][i]);
      expect(resid.get(`blocks.0.hook_resid_pre@${diffPos}`)!.recovery).toBeCloseTo(direction === 'denoise' ? 1 : 0, 4);
    });
  }

  it('zero and mean ablation write zero and the dataset mean of the other run', () => {
    const zero = byName(runSweep(patcher('noise', 'zero'), 'heads')).get('a0.h2')!;
    expect(zero.metric).toBeCloseTo(handPatch(model, data, 'noise', 'blocks.0.attn.hook_z', (a) => replaceAt(a, tf.zerosLike(a), 2, 2)), 4);
    const mean = byName(runSweep(patcher('noise', 'mean'), 'mlp-out')).get('blocks.0.hook_mlp_out@11')!;
    const expected = handPatch(model, data, 'noise', 'blocks.0.hook_mlp_out', (a, o) => replaceAt(a, tf.add(tf.zerosLike(a), tf.mean(o, 0, true)), 1, 11));
    expect(mean.metric).toBeCloseTo(expected, 4);
    expect(Math.abs(mean.metric - zero.metric)).toBeGreaterThan(1e-3);
  });

  it('stacked batching gives the numbers of one patch per pass, across layers and chunks of prompts', () => {
    const p = patcher('denoise');
    const stacked = runSweep(p, 'qkv');
    const single = runSweep(p, 'qkv', { maxStack: 1 });
    const mixed = runSweep(p, 'qkv', { maxStack: 7 }); // groups that straddle layers 0 and 1
    const chunked = runSweep(patcher('denoise', 'patch', 5), 'qkv'); // 16 prompts as 5 + 5 + 5 + 1
    expect(stacked.forwardPasses).toBe(1);
    expect(single.forwardPasses).toBe(24);
    expect(mixed.forwardPasses).toBe(4);
    expect(chunked.forwardPasses).toBe(4);
    for (const other of [single, mixed, chunked]) {
      other.components.forEach((c, i) => {
        expect(c.name).toBe(stacked.components[i].name);
        expect(Math.abs(c.metric - stacked.components[i].metric), c.name).toBeLessThan(1e-5);
      });
    }
  });

  it('reports progress and keeps the tensor count flat', () => {
    const p = patcher('noise');
    runSweep(p, 'pattern'); // warm-up
    const before = tf.memory().numTensors;
    const calls: [number, number][] = [];
    const r = runSweep(p, 'neurons:1', { onProgress: (d, t) => calls.push([d, t]) });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.forwardPasses).toBeGreaterThan(1);
    expect(calls[0]).toEqual([0, 256]);
    expect(calls.at(-1)).toEqual([256, 256]);
    expect(calls).toHaveLength(r.forwardPasses + 1);
    for (let i = 1; i < calls.length; i++) expect(calls[i][0]).toBeGreaterThan(calls[i - 1][0]);
    expect(r.rows).toEqual(['n0', 'n64', 'n128', 'n192']);
    expect(r.cols).toHaveLength(64);
  });

  it('rejects unknown sweeps and out-of-range neuron layers by name', () => {
    expect(() => parseSweep('head')).toThrow(/--sweep: unknown sweep 'head'.*resid, attn-out/);
    expect(() => parseSweep('neurons')).toThrow(/neurons:L/);
    expect(() => parseSweep('neurons:x')).toThrow(CircuitryError);
    expect(() => planSweep(parseSweep('neurons:2'), model.cfg, 12)).toThrow(/layer 2 is out of range \(the model has layers 0\.\.1\)/);
    expect(() => runSweep(patcher('noise'), 'neurons:9')).toThrow(CircuitryError);
  });
});

// ---------------------------------------------------------------------------------------------
// Models with hand-set weights (no LayerNorm), so that every effect is known in advance.

type Tensors = Map<string, HostTensor & { data: Float32Array }>;

function build(raw: Record<string, unknown>, set: (put: (key: string, shape: number[], entries: [number[], number][]) => void) => void): Transformer {
  const cfg = configFromHf({ model_type: 'gpt2', activation_function: 'relu', normalization: 'none', tie_word_embeddings: false, n_positions: 8, ...raw });
  const { dModel: d, nLayers: L, dVocab: V, nCtx, dMlp: dm } = cfg;
  const t: Tensors = new Map();
  const zeros = (key: string, shape: number[]) => t.set(key, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  zeros('wte.weight', [V, d]);
  zeros('wpe.weight', [nCtx, d]);
  zeros('lm_head.weight', [V, d]);
  for (let l = 0; l < L; l++) {
    zeros(`h.${l}.attn.c_attn.weight`, [d, 3 * d]);
    zeros(`h.${l}.attn.c_attn.bias`, [3 * d]);
    zeros(`h.${l}.attn.c_proj.weight`, [d, d]);
    zeros(`h.${l}.attn.c_proj.bias`, [d]);
    if (!cfg.attnOnly) {
      zeros(`h.${l}.mlp.c_fc.weight`, [d, dm]);
      zeros(`h.${l}.mlp.c_fc.bias`, [dm]);
      zeros(`h.${l}.mlp.c_proj.weight`, [dm, d]);
      zeros(`h.${l}.mlp.c_proj.bias`, [d]);
    }
  }
  set((key, shape, entries) => {
    const x = t.get(key)!;
    expect(x.shape).toEqual(shape);
    for (const [idx, v] of entries) x.data[idx.length === 1 ? idx[0] : idx[0] * shape[1] + idx[1]] += v;
  });
  return new Transformer(cfg, gpt2WeightsFromTensors(cfg, t, 'hand-built model'));
}

/** A tiny deterministic generator (LCG) for junk weights and prompts. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/**
 * Wires head h of layer l: it attends from every position to position 0 (its key reads the
 * position-0 dimension `posDim`; its query is a constant bias), reads the value dims `from` and
 * writes them, scaled, to the dims `to`.
 */
function wireCopyHead(
  put: (key: string, shape: number[], entries: [number[], number][]) => void,
  d: number,
  dh: number,
  l: number,
  h: number,
  posDim: number,
  from: number[],
  to: number[],
  scale: number,
) {
  put(`h.${l}.attn.c_attn.bias`, [3 * d], [[[h * dh], 1]]);
  put(`h.${l}.attn.c_attn.weight`, [d, 3 * d], [
    [[posDim, d + h * dh], 40],
    ...from.map((src, j): [number[], number] => [[src, 2 * d + h * dh + j], 1]),
  ]);
  put(`h.${l}.attn.c_proj.weight`, [d, d], to.map((dst, j): [number[], number] => [[h * dh + j, dst], scale]));
}

/** Junk head: random q/k/v from every dim, output only into `junk` dims that nothing reads. */
function wireJunkHead(put: (key: string, shape: number[], entries: [number[], number][]) => void, d: number, dh: number, l: number, h: number, junk: number[], rand: () => number) {
  const w: [number[], number][] = [];
  for (let i = 0; i < d; i++) for (const base of [0, d, 2 * d]) for (let j = 0; j < dh; j++) w.push([[i, base + h * dh + j], rand() - 0.5]);
  put(`h.${l}.attn.c_attn.weight`, [d, 3 * d], w);
  const o: [number[], number][] = [];
  for (let j = 0; j < dh; j++) for (const dst of junk) o.push([[h * dh + j, dst], rand() - 0.5]);
  put(`h.${l}.attn.c_proj.weight`, [d, d], o);
}

describe('a model with one planted head', () => {
  // d = 32: dims 0..7 token one-hot, 8..15 position one-hot, 16..23 the answer subspace the
  // unembedding reads, 24..31 junk. a1.h2 copies the token at position 0 into the answer
  // subspace with weight 2; a0.h3 does the same with weight 0.5; the other six heads are junk.
  const V = 8;
  const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);
  let model: Transformer;
  let data: PairData;
  const patchers: Patcher[] = [];
  beforeAll(async () => {
    await initBackend('wasm');
    const rand = lcg(7);
    model = build({ n_layer: 2, n_head: 4, n_embd: 32, vocab_size: V, attn_only: true }, (put) => {
      put('wte.weight', [V, 32], range(0, V).map((t) => [[t, t], 1]));
      put('wpe.weight', [8, 32], range(0, 8).map((i) => [[i, 8 + i], 1]));
      put('lm_head.weight', [V, 32], range(0, V).map((t) => [[t, 16 + t], 1]));
      wireCopyHead(put, 32, 8, 1, 2, 8, range(0, 8), range(16, 8), 2);
      wireCopyHead(put, 32, 8, 0, 3, 8, range(0, 8), range(16, 8), 0.5);
      for (const [l, h] of [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 3]]) wireJunkHead(put, 32, 8, l, h, range(24, 8), rand);
    });
    const clean: number[][] = [];
    const corrupted: number[][] = [];
    const answers: number[][] = [];
    const wrongs: number[][] = [];
    for (let i = 0; i < 6; i++) {
      const a = i % V;
      const b = (i + 3) % V;
      const fill = [Math.floor(rand() * V), Math.floor(rand() * V), Math.floor(rand() * V)];
      clean.push([a, ...fill]);
      corrupted.push([b, ...fill]);
      answers.push([a]);
      wrongs.push([b]);
    }
    data = { clean, corrupted, answers, wrongs };
  });
  afterAll(() => {
    patchers.forEach((p) => p.dispose());
    model.dispose();
  });
  const make = (direction: Direction) => {
    const p = new Patcher(model, new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: false, qkv: true }), data, { metric: 'logit-diff', direction });
    patchers.push(p);
    return p;
  };

  for (const direction of ['noise', 'denoise'] as const) {
    it(`${direction}: the head sweep finds the planted head, with the effects its weights imply`, () => {
      const p = make(direction);
      // logit diff = 2·(±1) + 0.5·(±1): clean 2.5, corrupted −2.5
      expect(p.cleanMetric).toBeCloseTo(2.5, 3);
      expect(p.corruptedMetric).toBeCloseTo(-2.5, 3);
      const sign = direction === 'noise' ? -1 : 1;
      const heads = runSweep(p, 'heads');
      const [first, second] = topComponents(heads, 2);
      expect(first.name).toBe('a1.h2');
      expect(first.delta).toBeCloseTo(sign * 4, 3);
      expect(first.recovery).toBeCloseTo(direction === 'noise' ? 0.2 : 0.8, 3);
      expect(second.name).toBe('a0.h3');
      expect(second.delta).toBeCloseTo(sign * 1, 3);
      for (const c of heads.components) if (c.name !== 'a1.h2' && c.name !== 'a0.h3') expect(Math.abs(c.delta), c.name).toBeLessThan(1e-4);

      // the planted head acts through its values: q and k are the same in both runs
      const qkv = byName(runSweep(p, 'qkv'));
      expect(qkv.get('a1.h2<v>')!.delta).toBeCloseTo(sign * 4, 3);
      expect(Math.abs(qkv.get('a1.h2<q>')!.delta)).toBeLessThan(1e-4);
      expect(Math.abs(qkv.get('a1.h2<k>')!.delta)).toBeLessThan(1e-4);
      expect(Math.abs(byName(runSweep(p, 'pattern')).get('a1.h2.pattern')!.delta)).toBeLessThan(1e-4);

      // the residual stream matters at position 0 (all of it before layer 0, the planted head's share
      // before layer 1) and, before layer 1, at the last position, where a0.h3 has written its share
      const resid = runSweep(p, 'resid');
      for (const c of resid.components) {
        const expected = c.col === 0 ? sign * (c.row === 0 ? 5 : 4) : c.row === 1 && c.col === 3 ? sign * 1 : 0;
        expect(c.delta, c.name).toBeCloseTo(expected, 3);
      }
      // and by position, the planted head's effect is all at the last position (where the metric is read)
      const byPos = byName(runSweep(p, 'heads-by-pos'));
      expect(byPos.get('a1.h2@3')!.delta).toBeCloseTo(sign * 4, 3);
      expect(Math.abs(byPos.get('a1.h2@2')!.delta)).toBeLessThan(1e-4);
    });
  }
});

describe('a redundant OR pair of heads', () => {
  // d = 16: dims 0..3 token one-hot (0 = N, 1 = T), 4..7 positions, 8 a flag F, 9 the output O,
  // 10..15 junk. a0.h0 and a0.h1 both write F += [token at position 0 is T]; the MLP computes
  // O = relu(F) − relu(F − 1) = min(F, 1) (an OR of the two heads); logit diff = 3·O.
  // Clean prompts start with T (F = 2, O = 1), corrupted ones with N (F = 0, O = 0).
  let model: Transformer;
  let data: PairData;
  const patchers: Patcher[] = [];
  const graph = new CircuitGraph({ nLayers: 1, nHeads: 4, hasMlp: true, qkv: true });
  beforeAll(async () => {
    await initBackend('wasm');
    const rand = lcg(11);
    model = build({ n_layer: 1, n_head: 4, n_embd: 16, vocab_size: 4, n_inner: 4 }, (put) => {
      put('wte.weight', [4, 16], [0, 1, 2, 3].map((t) => [[t, t], 1]));
      put('wpe.weight', [8, 16], [0, 1, 2, 3].map((i) => [[i, 4 + i], 1]));
      put('lm_head.weight', [4, 16], [[[2, 9], 3]]);
      wireCopyHead(put, 16, 4, 0, 0, 4, [1], [8], 1);
      wireCopyHead(put, 16, 4, 0, 1, 4, [1], [8], 1);
      wireJunkHead(put, 16, 4, 0, 2, [10, 11, 12, 13, 14, 15], rand);
      wireJunkHead(put, 16, 4, 0, 3, [10, 11, 12, 13, 14, 15], rand);
      put('h.0.mlp.c_fc.weight', [16, 4], [[[8, 0], 1], [[8, 1], 1]]);
      put('h.0.mlp.c_fc.bias', [4], [[[1], -1]]);
      put('h.0.mlp.c_proj.weight', [4, 16], [[[0, 9], 1], [[1, 9], -1]]);
    });
    const clean: number[][] = [];
    const corrupted: number[][] = [];
    for (let i = 0; i < 5; i++) {
      const fill = [2 + (i % 2), 2 + ((i >> 1) % 2), 3];
      clean.push([1, ...fill]);
      corrupted.push([0, ...fill]);
    }
    data = { clean, corrupted, answers: clean.map(() => [2]), wrongs: clean.map(() => [3]) };
  });
  afterAll(() => {
    patchers.forEach((p) => p.dispose());
    model.dispose();
  });
  const make = (direction: Direction) => {
    const p = new Patcher(model, graph, data, { metric: 'logit-diff', direction });
    patchers.push(p);
    return p;
  };

  it('noising either head alone changes little; denoising either head alone recovers nearly all', () => {
    const noise = make('noise');
    const denoise = make('denoise');
    expect(noise.cleanMetric).toBeCloseTo(3, 3);
    expect(noise.corruptedMetric).toBeCloseTo(0, 3);
    const n = byName(runSweep(noise, 'heads'));
    const d = byName(runSweep(denoise, 'heads'));
    for (const h of ['a0.h0', 'a0.h1']) {
      expect(Math.abs(n.get(h)!.delta), `noise ${h}`).toBeLessThan(0.05 * 3);
      expect(n.get(h)!.recovery).toBeGreaterThan(0.95);
      expect(d.get(h)!.recovery, `denoise ${h}`).toBeGreaterThan(0.95);
      expect(d.get(h)!.delta).toBeCloseTo(3, 2);
    }
    // the junk heads do nothing in either direction
    for (const h of ['a0.h2', 'a0.h3']) expect(Math.abs(n.get(h)!.delta) + Math.abs(d.get(h)!.delta)).toBeLessThan(1e-4);
    // noising both heads together breaks the OR: the pair is necessary, neither head alone is
    const both = pathPatch(noise, ['a0.h0', 'a0.h1'], ['m0']);
    expect(both.edges).toEqual(['a0.h0->m0', 'a0.h1->m0']);
    expect(both.recovery).toBeCloseTo(0, 2);
    // the single-edge sweep shows the same asymmetry on the edges into the OR gate
    const en = byName(runSweep(noise, 'edges'));
    const ed = byName(runSweep(denoise, 'edges'));
    expect(Math.abs(en.get('a0.h0->m0')!.delta)).toBeLessThan(0.05 * 3);
    expect(ed.get('a0.h0->m0')!.recovery).toBeGreaterThan(0.95);
  });
});
