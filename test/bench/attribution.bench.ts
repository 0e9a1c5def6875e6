import * as tf from '@tensorflow/tfjs';
import { CircuitGraph } from '../../src/graph/graph.js';
import { Patcher, type PairData } from '../../src/patching/patcher.js';
import { eap, eapIg, eapIgActivations } from '../../src/attribution/index.js';
import type { EdgeAttribution } from '../../src/attribution/index.js';
import { randomGpt2, GPT2_SMALL, type RandomModelSpec } from '../helpers/random-model.js';
import { fmt } from './timing.js';
import { benchFamilyAttribution } from './engines-families.bench.js';

/** Average ranks (ties share their mean rank). */
function ranks(x: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Float64Array(x.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

/** Spearman's rank correlation. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = ra.length;
  const mean = (n - 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) ** 2;
    sbb += (rb[i] - mean) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** n pairs of p tokens; the corrupted prompt differs in two positions. */
function pairs(n: number, p: number, vocab: number, salt: number): PairData {
  const clean = Array.from({ length: n }, (_, b) => Array.from({ length: p }, (_, i) => (b * 7919 + i * 104729 + salt * 31) % vocab));
  const corrupted = clean.map((row, b) => row.map((t, i) => (i === (b % (p - 1)) || i === p - 2 ? (t + 1 + ((b * 13) % (vocab - 1))) % vocab : t)));
  return {
    clean,
    corrupted,
    answers: clean.map((_, b) => [(b * 31 + 7) % vocab]),
    wrongs: clean.map((_, b) => [(b * 31 + 8) % vocab]),
  };
}

const metric = 'logit-diff' as const;

/** Edge scores in canonical edge order. */
const onEdges = (g: CircuitGraph, r: EdgeAttribution) => g.edges.map((e) => r.scores[e.index]);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * `fn`'s wall time in plain forward passes: each repetition times one plain forward and then `fn`,
 * so that both see the same machine load (other processes share the cores); the median ratio.
 */
function forwardEquivalents(plain: () => void, fn: () => void, reps: number): { ratio: number; ms: number; plainMs: number } {
  plain();
  fn();
  const ratios: number[] = [];
  const times: number[] = [];
  const plains: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    plain();
    const tp = performance.now() - t;
    t = performance.now();
    fn();
    const tf_ = performance.now() - t;
    ratios.push(tf_ / tp);
    times.push(tf_);
    plains.push(tp);
  }
  return { ratio: median(ratios), ms: median(times), plainMs: median(plains) };
}

/**
 * Attribution's cost in forward-pass equivalents (wall time / one plain forward of the same batch),
 * its agreement with exact single-edge patching, and the score pass at GPT-2 small's shape.
 */
export async function benchAttribution(log: (line: string) => void): Promise<void> {
  const m = 5;
  // 1. the score pass at GPT-2 small's shape (first, while the wasm heap is unfragmented)
  {
    const model = randomGpt2({ ...GPT2_SMALL, seed: 13 });
    const graph = new CircuitGraph({ nLayers: 12, nHeads: 12, hasMlp: true, qkv: true });
    const [B, P] = [8, 16];
    const data = pairs(B, P, GPT2_SMALL.vocab, 3);
    const tokens = model.tokens(data.clean);
    const plain = () => model.forward(tokens).dispose();
    const t0 = performance.now();
    eap({ model, graph, data }, { metric }); // includes the one-time host copy of the attention weights
    const first = (performance.now() - t0) / 1000;
    const before = tf.memory().numBytes;
    let result: EdgeAttribution | undefined;
    const profile = await tf.profile(() => {
      result = eap({ model, graph, data }, { metric });
    });
    const e = forwardEquivalents(plain, () => eap({ model, graph, data }, { metric }), 2);
    const ig = forwardEquivalents(plain, () => eapIg({ model, graph, data }, { metric, steps: m }), 3);
    log(`GPT-2-small shape (random weights), ${graph.nEdges} edges, batch ${B} × ${P}: plain forward ${fmt(e.plainMs, 0)} ms`);
    log(`EAP score pass ${fmt(e.ms / 1000, 2)} s = ${fmt(e.ratio)} forward-pass equivalents (first call ${fmt(first, 2)} s with the one-time weight copy); EAP-IG m=${m} ${fmt(ig.ms / 1000, 2)} s = ${fmt(ig.ratio)}`);
    log(`peak tensor memory during the EAP pass ${fmt(profile.peakBytes / 2 ** 20, 0)} MiB, of which the model ${fmt(before / 2 ** 20, 0)} MiB (wasm heap cap 4096 MiB); ${result!.forwardPasses} forward + ${result!.backwardPasses} backward passes`);
    tokens.dispose();
    model.dispose();
  }
  // 2. cost, on a model of ≥ 1,000 edges
  {
    const spec: RandomModelSpec = { nLayers: 4, nHeads: 8, dModel: 256, vocab: 8192, nCtx: 64, seed: 11 };
    const model = randomGpt2(spec);
    const graph = new CircuitGraph({ nLayers: 4, nHeads: 8, hasMlp: true, qkv: true });
    const [B, P] = [16, 16];
    const data = pairs(B, P, spec.vocab, 1);
    const tokens = model.tokens(data.clean);
    const input = { model, graph, data };
    const plain = () => model.forward(tokens).dispose();
    const lastSum = (l: tf.Tensor) => tf.sum(tf.slice(l, [0, l.shape[1]! - 1, 0], [B, 1, 1])) as tf.Scalar;
    const fb = forwardEquivalents(plain, () => model.gradients(tokens, ['blocks.0.hook_resid_pre'], lastSum, { lastPositionOnly: true, lastQueryOnly: true }).grads.forEach((g) => g.dispose()), 5);
    // what attribution's own forward passes cost (every metric reads the last position only)
    const last = forwardEquivalents(plain, () => model.forward(tokens, { lastPositionOnly: true, lastQueryOnly: true }).dispose(), 5);
    const e = forwardEquivalents(plain, () => eap(input, { metric }), 9);
    const ig = forwardEquivalents(plain, () => eapIg(input, { metric, steps: m }), 5);
    // the m − 1 interpolated steps after α = 1 stacked into one batch, as a GPU would run them
    const stacked = forwardEquivalents(plain, () => eapIg(input, { metric, steps: m, stepBatch: m - 1 }), 3);
    const split = forwardEquivalents(plain, () => eap(input, { metric, gradient: 'split' }), 1);
    const mask = forwardEquivalents(plain, () => eap(input, { metric, gradient: 'mask' }), 1);
    log(`random model: ${spec.nLayers} layers × ${spec.nHeads} heads, d ${spec.dModel}, vocab ${spec.vocab}; ${graph.nEdges} edges; batch ${B} × ${P}`);
    log(`plain forward (model.forward of the batch, logits at all positions) ${fmt(e.plainMs, 0)} ms: the unit below; the model's own forward + backward at the last position = ${fmt(fb.ratio)}; a forward with the last block at the last position (what attribution runs) = ${fmt(last.ratio)}`);
    log(`EAP (2 forward + 1 backward pass) ${fmt(e.ms, 0)} ms = ${fmt(e.ratio)} forward-pass equivalents (bar ≤ 3.5); ${fmt(e.ratio / last.ratio)} last-position forwards`);
    log(`EAP-IG, m = ${m} (1 + ${m} forward, ${m} backward) ${fmt(ig.ms, 0)} ms = ${fmt(ig.ratio)} forward-pass equivalents (bar ≤ ${m + 2}); ${fmt(ig.ratio / last.ratio)} last-position forwards`);
    log(`EAP-IG with its ${m - 1} interpolated steps stacked into one pass: ${fmt(stacked.ratio)} forward-pass equivalents (on a CPU a batch of n steps costs n passes)`);
    log(`EAP by the other gradient paths: split q/k/v hooks ${fmt(split.ratio)}, masked engine ${fmt(mask.ratio)} forward-pass equivalents`);
    tokens.dispose();
    model.dispose();
  }
  // 3. rank agreement with exact single-edge patching
  {
    const spec: RandomModelSpec = { nLayers: 4, nHeads: 8, dModel: 64, vocab: 512, nCtx: 32, seed: 12 };
    const model = randomGpt2(spec);
    const graph = new CircuitGraph({ nLayers: 4, nHeads: 8, hasMlp: true, qkv: true });
    const data = pairs(16, 12, spec.vocab, 2);
    const patcher = new Patcher(model, graph, data, { metric });
    const t0 = performance.now();
    const values = patcher.evaluate(graph.edges.map((e) => {
      const mask = patcher.fullMask();
      mask[e.index] = 0;
      return mask;
    }));
    const exactSeconds = (performance.now() - t0) / 1000;
    const exact = values.map((v) => v - patcher.cleanMetric);
    const abs = (xs: number[]) => xs.map(Math.abs);
    log(`rank agreement with exact single-edge patching (${graph.nEdges} edges, d ${spec.dModel}, 16 × 12 tokens; exact sweep ${fmt(exactSeconds, 1)} s):`);
    for (const [name, r] of [
      ['EAP', eap({ patcher })],
      [`EAP-IG m=${m}`, eapIg({ patcher }, { steps: m })],
      [`EAP-IG activations m=${m}`, eapIgActivations({ patcher }, { steps: m })],
    ] as const) {
      const sc = onEdges(graph, r);
      log(`  ${name.padEnd(24)} Spearman ρ signed ${fmt(spearman(sc, exact), 3)}, |score| vs |effect| ${fmt(spearman(abs(sc), abs(exact)), 3)}`);
    }
    patcher.dispose();
    model.dispose();
  }
  log('every family (engines-families.bench.ts):');
  await benchFamilyAttribution(log);
}
