import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { type CircuitGraph, graphForModel } from '../src/graph/graph.js';
import { Patcher, type PairData } from '../src/patching/patcher.js';
import { bindGraph } from '../src/patching/binding.js';
import { verifyEdges } from '../src/patching/path-patching.js';
import { attributeNodes, eap, eapIg, eapIgActivations } from '../src/attribution/index.js';
import { runAcdc } from '../src/discovery/acdc.js';
import type { Transformer } from '../src/model/transformer.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { deeperFamilyModel, loadFamilyData, loadFamilyModel } from './helpers/families.js';

/**
 * Every engine on the four non-GPT-2 fixture models (GPT-NeoX, Llama, Qwen2, Gemma-2) against
 * what EAP-IG and TransformerLens computed on them (test/fixtures/README.md). Metric: the mean
 * logit difference at the last position.
 */

interface EdgeRef {
  eap: number;
  exact_patch_delta: number;
  eap_mask_gradient?: number;
}
interface EdgesFile {
  clean_metric: number;
  corrupted_metric: number;
  n_edges: number;
  parallel_attn_mlp: boolean;
  edges: Record<string, EdgeRef>;
}

const FAMILIES = ['neox', 'llama', 'qwen2', 'gemma2'] as const;

/** max_e |got(e) − want(e)| / max_e |want(e)| over the graph's edges. */
function relError(graph: CircuitGraph, got: (name: string, index: number) => number, want: (name: string) => number): { rel: number; worst: string } {
  let largest = 0;
  let worst = '';
  let err = 0;
  for (const e of graph.edges) {
    largest = Math.max(largest, Math.abs(want(e.name)));
    const d = Math.abs(got(e.name, e.index) - want(e.name));
    if (d > err) [err, worst] = [d, e.name];
  }
  return { rel: err / largest, worst };
}

/** One mask per edge, that edge patched. */
const singleEdgeMasks = (patcher: Patcher, graph: CircuitGraph) =>
  graph.edges.map((e) => {
    const m = patcher.fullMask();
    m[e.index] = 0;
    return m;
  });

describe.each(FAMILIES)('%s-shared: every engine against the reference', (family) => {
  const dir = join(FIXTURES, `${family}-shared`);
  const ref = readJson<EdgesFile>(dir, 'edges.json');
  const igRef = readJson<{ edges: Record<string, { score: number }> }>(dir, 'eap_ig.json');
  /** EAP as a masked forward pass defines it (Gemma-2: through the post-attention norm's Jacobian). */
  const eapRef = (name: string) => ref.edges[name].eap_mask_gradient ?? ref.edges[name].eap;
  let model: Transformer;
  let graph: CircuitGraph;
  let data: PairData;
  let patcher: Patcher;
  const worst: Record<string, number> = {};
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadFamilyModel(join(dir, 'model'));
    graph = graphForModel(model.cfg);
    data = loadFamilyData(dir);
    patcher = new Patcher(model, graph, data, { metric: 'logit-diff' });
  });
  afterAll(() => {
    patcher?.dispose();
    model?.dispose();
    console.log(`${family}: worst relative errors ${JSON.stringify(worst)}`);
  });

  it('has exactly the reference edge names', () => {
    expect(graph.nEdges).toBe(ref.n_edges);
    expect(new Set(graph.edges.map((e) => e.name))).toEqual(new Set(Object.keys(ref.edges)));
    expect(graph.shape.parallelAttnMlp === true).toBe(ref.parallel_attn_mlp);
  });

  it('binds the input node to what enters block 0', () => {
    const b = bindGraph(model.cfg, graph);
    expect(b.inputHooks).toEqual(model.cfg.positional === 'learned' ? ['hook_embed', 'hook_pos_embed'] : ['hook_embed']);
    expect(b.facts.parallel).toBe(ref.parallel_attn_mlp);
    expect(b.facts.headsInsideNorm).toBe(family === 'gemma2');
  });

  it('reproduces the clean and corrupted metrics', () => {
    expect(Math.abs(patcher.cleanMetric - ref.clean_metric)).toBeLessThan(1e-4);
    expect(Math.abs(patcher.corruptedMetric - ref.corrupted_metric)).toBeLessThan(1e-4);
  });

  it('single-edge patching equals the exact deltas (the engine picks the sparse or dense pass)', () => {
    const values = patcher.evaluate(singleEdgeMasks(patcher, graph));
    const byName = new Map(graph.edges.map((e, i) => [e.name, values[i] - patcher.cleanMetric]));
    const { rel, worst: at } = relError(graph, (n) => byName.get(n)!, (n) => ref.edges[n].exact_patch_delta);
    worst.exact = rel;
    expect(rel, `worst edge ${at}`).toBeLessThan(1e-4);
  });

  it('the sparse, buffered and tensor passes give the same patched metric', () => {
    // a few edges from every kind of source into every kind of destination
    const names = graph.edges.filter((_, i) => i % 7 === 0).map((e) => e.name);
    const masks = names.map((n) => {
      const m = patcher.fullMask();
      m[graph.edge(n).index] = 0;
      return m;
    });
    const want = names.map((n) => ref.edges[n].exact_patch_delta + ref.clean_metric);
    const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.exact_patch_delta)));
    // one edge per pass: host masks with one source take the sparse pass (Gemma's heads: the dense one)
    const sparse = masks.map((m) => patcher.evaluate([m])[0]);
    // the tensor path under a gradient tape (maskGradient's value)
    const taped = masks.map((m) => patcher.maskGradient(m).value);
    // dense tensor masks without a tape: the buffered pass on wasm
    const buffered = masks.map((m) => bufferedMetric(patcher, graph, data, m));
    for (const [label, got] of [['sparse', sparse], ['taped', taped], ['buffered', buffered]] as const) {
      got.forEach((v, i) => expect(Math.abs(v - want[i]), `${label} ${names[i]}`).toBeLessThan(1e-4 * largest));
    }
  });

  it('EAP equals the reference scores', () => {
    const r = eap({ model, graph, data }, { metric: 'logit-diff' });
    const { rel, worst: at } = relError(graph, (_, i) => r.scores[i], eapRef);
    worst.eap = rel;
    expect(rel, `worst edge ${at} (gradient path ${r.gradient})`).toBeLessThan(1e-4);
    expect(r.baseMetric).toBeCloseTo(ref.clean_metric, 4);
  });

  it('EAP on every gradient path: split and fused give EAP-IG\'s attribute, mask gives the masked pass\'s gradient', () => {
    for (const gradient of ['split', 'fused'] as const) {
      const r = eap({ model, graph, data }, { metric: 'logit-diff', gradient });
      const e1 = relError(graph, (_, i) => r.scores[i], (n) => ref.edges[n].eap);
      worst[`eap-${gradient}`] = e1.rel;
      expect(e1.rel, `${gradient}: worst edge ${e1.worst}`).toBeLessThan(1e-4);
    }
    const mask = eap({ model, graph, data }, { metric: 'logit-diff', gradient: 'mask' });
    const e2 = relError(graph, (_, i) => mask.scores[i], eapRef);
    worst['eap-mask'] = e2.rel;
    expect(e2.rel, `mask: worst edge ${e2.worst}`).toBeLessThan(1e-4);
  });

  it('EAP-IG (inputs, 5 steps, EAP-IG\'s interpolation) equals the reference', () => {
    const r = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 5, interpolation: 'eap-ig' });
    const { rel, worst: at } = relError(graph, (_, i) => r.scores[i], (n) => igRef.edges[n].score);
    worst.eapIg = rel;
    expect(rel, `worst edge ${at}`).toBeLessThan(1e-3);
    // stacked steps change nothing
    const stacked = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 5, interpolation: 'eap-ig', stepBatch: 5 });
    expect(relError(graph, (_, i) => stacked.scores[i], (n) => igRef.edges[n].score).rel).toBeLessThan(1e-3);
    // the other run, the run's own sources, and the five steps in one forward + backward pass
    expect([stacked.forwardPasses, stacked.backwardPasses]).toEqual([3, 1]);
    // the default is EAP-IG's own rule; the run's steps (α = 1/5 … 1) are another Riemann sum: the choice matters
    const byDefault = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 5 });
    expect(relError(graph, (_, i) => byDefault.scores[i], (n) => igRef.edges[n].score).rel).toBeLessThan(1e-3);
    const ownSteps = eapIg({ model, graph, data }, { metric: 'logit-diff', steps: 5, interpolation: 'run' });
    expect(relError(graph, (_, i) => ownSteps.scores[i], (n) => igRef.edges[n].score).rel).toBeGreaterThan(1e-2);
  });

  it('EAP-IG on activations with one step is EAP', () => {
    const r = eapIgActivations({ model, graph, data }, { metric: 'logit-diff', steps: 1 });
    const { rel, worst: at } = relError(graph, (_, i) => r.scores[i], eapRef);
    expect(rel, `worst edge ${at}`).toBeLessThan(1e-4);
  });

  it("node attribution: a source's estimate is the sum of its outgoing EAP scores", () => {
    const nodes = attributeNodes(model, data, { metric: 'logit-diff' });
    const H = model.cfg.nHeads;
    const out = new Map<string, number>();
    for (const e of graph.edges) {
      const src = graph.sources[e.src].name;
      out.set(src, (out.get(src) ?? 0) + eapRef(e.name));
    }
    const largest = Math.max(...[...out.values()].map(Math.abs));
    graph.sources.forEach((s) => {
      const got = s.kind === 'input' ? nodes.input : s.kind === 'head' ? nodes.heads[s.layer * H + s.head] : nodes.mlps[s.layer];
      expect(Math.abs(got - out.get(s.name)!), s.name).toBeLessThan(1e-4 * largest);
    });
  });

  it('path patching verifies edges with their exact deltas', () => {
    const names = graph.edges.filter((_, i) => i % 5 === 0).map((e) => e.name);
    const effects = verifyEdges(patcher, names);
    const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.exact_patch_delta)));
    effects.forEach((ef, i) => expect(Math.abs(ef.delta - ref.edges[names[i]].exact_patch_delta), names[i]).toBeLessThan(1e-4 * largest));
  });

  it('ACDC decides from the same masked passes: its circuit evaluates to its final metric', async () => {
    const result = await runAcdc(patcher, { tau: 0.02, order: 'auto-circuit' });
    expect(result.complete).toBe(true);
    expect(result.kept.length).toBeGreaterThan(0);
    expect(result.kept.length).toBeLessThan(graph.nEdges);
    // the first decision removes the first edge visited if the exact delta says so
    const first = result.steps[0];
    const delta = ref.edges[first.edge].exact_patch_delta;
    expect(Math.abs(first.delta - -delta)).toBeLessThan(1e-4 * Math.max(1, Math.abs(delta)));
  });
});

/**
 * Shapes the fixtures do not have: each family one layer deeper (layer 2 a perturbed copy of
 * layer 1). No reference numbers here, so the engines are held to identities that hold on every
 * model: the masked pass with every edge kept or patched is the clean or corrupted run; the
 * sparse, buffered and tensor passes agree on single-edge patches (including patches that start
 * above layer 0); the gradient paths agree with each other (mask = split = fused outside a
 * post-attention norm); EAP-IG with one step is EAP.
 */
describe.each(FAMILIES)('%s, one layer deeper: the engines agree with each other', (family) => {
  const dir = join(FIXTURES, `${family}-shared`);
  let model: Transformer;
  let graph: CircuitGraph;
  let data: PairData;
  let patcher: Patcher;
  beforeAll(async () => {
    await initBackend('wasm');
    model = deeperFamilyModel(join(dir, 'model'));
    graph = graphForModel(model.cfg);
    data = loadFamilyData(dir);
    patcher = new Patcher(model, graph, data, { metric: 'logit-diff', batchSize: 8 });
  });
  afterAll(() => {
    patcher?.dispose();
    model?.dispose();
  });

  it('keeps the clean logits with every edge kept, and gives the corrupted ones with every edge patched', () => {
    expect(model.cfg.nLayers).toBe(3);
    for (const [value, want] of [[1, patcher.cleanMetric], [0, patcher.corruptedMetric]] as const) {
      const m = graph.denseEdgeArray(value);
      expect(Math.abs(patcher.evaluate([m])[0] - want), `mask ${value}, host mask (sparse or dense pass)`).toBeLessThan(1e-5);
      expect(Math.abs(patcher.maskGradient(m).value - want), `mask ${value}, taped`).toBeLessThan(1e-5);
    }
  });

  it('single-edge patches: the sparse, buffered and tensor passes agree', () => {
    const edges = graph.edges.filter((_, i) => i % 11 === 3);
    const masks = edges.map((e) => {
      const m = patcher.fullMask();
      m[e.index] = 0;
      return m;
    });
    const one = masks.map((m) => patcher.evaluate([m])[0]); // sparse where the sources allow (each from its first patched layer)
    const buffered = masks.map((m) => bufferedMetric(patcher, graph, data, m)); // tensor masks without a tape
    const taped = masks.map((m) => patcher.maskGradient(m).value);
    const scale = Math.abs(patcher.cleanMetric - patcher.corruptedMetric);
    edges.forEach((e, i) => {
      expect(Math.abs(one[i] - taped[i]), `${e.name}: one per pass vs taped`).toBeLessThan(1e-5 * scale + 1e-6);
      expect(Math.abs(buffered[i] - taped[i]), `${e.name}: buffered vs taped`).toBeLessThan(1e-5 * scale + 1e-6);
    });
  });

  it('EAP: the gradient paths agree, and EAP-IG with one step is EAP', () => {
    const input = { model, graph, data };
    const split = eap(input, { metric: 'logit-diff', gradient: 'split' });
    const fused = eap(input, { metric: 'logit-diff', gradient: 'fused' });
    const mask = eap(input, { metric: 'logit-diff', gradient: 'mask' });
    // one step at α = 1 (the run's rule) is the clean input itself
    const ig1 = eapIg(input, { metric: 'logit-diff', steps: 1, gradient: 'split', interpolation: 'run' });
    const at = (r: { scores: Float32Array }) => (_: string, i: number) => r.scores[i];
    const want = (n: string) => split.scores[graph.edge(n).index];
    expect(relError(graph, at(fused), want).rel).toBeLessThan(1e-4);
    expect(relError(graph, at(ig1), want).rel).toBeLessThan(1e-4);
    const b = bindGraph(model.cfg, graph);
    // outside a post-attention norm the mask gradient is the same score; inside it, edges from heads add the norm's Jacobian
    const agree = relError(graph, at(mask), want);
    if (!b.facts.headsInsideNorm) expect(agree.rel, agree.worst).toBeLessThan(1e-4);
    else {
      const notFromHeads = graph.edges.filter((e) => graph.sources[e.src].kind !== 'head');
      const big = Math.max(...graph.edges.map((e) => Math.abs(split.scores[e.index])));
      for (const e of notFromHeads) expect(Math.abs(mask.scores[e.index] - split.scores[e.index]), e.name).toBeLessThan(1e-4 * big);
    }
  });
});

/**
 * The mean logit difference under one dense mask given as a tensor, outside any gradient tape:
 * the engine's buffered pass on wasm (its tensor pass for heads inside a post-attention norm).
 */
function bufferedMetric(patcher: Patcher, graph: CircuitGraph, data: PairData, m: Float32Array): number {
  let v = 0;
  let at = 0;
  patcher.forEachChunk((c) => {
    const maskT = tf.tensor3d(m, [1, graph.nDst, graph.nSrc]);
    const logits = patcher.engine.maskedForward({ run: c.run, patch: c.patch, masks: maskT });
    maskT.dispose();
    const B = logits.shape[0];
    const mean = tf.tidy(() => tf.mean(tf.sub(gatherLast(logits, data.answers.slice(at, at + B)), gatherLast(logits, data.wrongs.slice(at, at + B)))));
    v += mean.dataSync()[0] * c.weight;
    at += B;
    tf.dispose([logits, mean]);
  });
  return v;
}

/** logits[b, -1, ids[b][0]] for a batch [B, 1, V] (one id per prompt). */
function gatherLast(logits: tf.Tensor, ids: readonly (readonly number[])[]): tf.Tensor {
  const [B, , V] = logits.shape as [number, number, number];
  const flat = tf.reshape(logits, [B, V]);
  const onehot = tf.oneHot(tf.tensor1d(ids.slice(0, B).map((r) => r[0]), 'int32'), V);
  return tf.sum(tf.mul(flat, onehot), 1);
}
