import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { graphForModel } from '../../src/graph/graph.js';
import { PatchingEngine } from '../../src/patching/engine.js';
import { eap } from '../../src/attribution/index.js';
import type { Transformer } from '../../src/model/transformer.js';
import type { PairData } from '../../src/patching/patcher.js';
import { randomFamilyModel } from '../helpers/random-family.js';
import { loadFamilyModel } from '../helpers/families.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { fmt } from './timing.js';

/**
 * Masked/plain forward and EAP in forward-pass equivalents on every family: a Llama-shape model
 * with random weights (RMSNorm, rotary, SwiGLU, GQA; built here, no download) at a bench size,
 * and the four fixture models (tiny: their figures show the general paths work, not speed).
 * BENCH_TINY=1 shrinks the Llama-shape model to check that the bench runs.
 */
const tiny = process.env.BENCH_TINY === '1';
/** Llama-3's block (RMSNorm, rotary, SwiGLU, 4 query heads per kv head) at a size a 2-core box runs. */
const llamaConfig = {
  model_type: 'llama',
  num_hidden_layers: tiny ? 2 : 4,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  hidden_size: tiny ? 64 : 256,
  intermediate_size: tiny ? 160 : 704,
  vocab_size: tiny ? 256 : 2048,
  max_position_embeddings: 128,
  rope_theta: 500000,
};

function rows(B: number, P: number, vocab: number, salt: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, p) => (b * 7919 + p * 104729 + salt * 31) % vocab));
}

function pairs(B: number, P: number, vocab: number): PairData {
  return { clean: rows(B, P, vocab, 1), corrupted: rows(B, P, vocab, 2), answers: rows(B, 1, vocab, 3), wrongs: rows(B, 1, vocab, 4) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `fn` in plain forward passes, interleaved with them (the shared machine's load moves both); the median ratio. */
function equivalents(plain: () => void, fn: () => void, reps: number): { ratio: number; plainMs: number } {
  plain();
  fn();
  const ratios: number[] = [];
  const plains: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    plain();
    const tp = performance.now() - t;
    t = performance.now();
    fn();
    ratios.push((performance.now() - t) / tp);
    plains.push(tp);
  }
  return { ratio: median(ratios), plainMs: median(plains) };
}

function models(): { name: string; build: () => Transformer }[] {
  return [
    { name: `llama-shape (random, ${llamaConfig.num_hidden_layers} layers × 8 heads / 2 kv, d ${llamaConfig.hidden_size})`, build: () => randomFamilyModel(llamaConfig, 5) },
    ...['neox', 'llama', 'qwen2', 'gemma2'].map((f) => ({ name: `${f}-shared fixture (tiny)`, build: () => loadFamilyModel(join(FIXTURES, `${f}-shared`, 'model')) })),
  ];
}

/** Masked forward (every mask live) against the plain forward, logits at the last position. */
export async function benchFamilyPatching(log: (line: string) => void): Promise<void> {
  for (const { name, build } of models()) {
    const model = build();
    const graph = graphForModel(model.cfg);
    const engine = new PatchingEngine(model, graph);
    const [B, P] = [8, Math.min(16, model.cfg.nCtx)];
    const clean = engine.cacheRun(model.tokens(rows(B, P, model.cfg.dVocab, 1)));
    const corrupted = engine.cacheRun(model.tokens(rows(B, P, model.cfg.dVocab, 2)));
    const live = graph.denseEdgeArray(0);
    for (const e of graph.edges) live[e.index] = 0.25 + 0.5 * ((e.index * 2654435761) % 1000) / 1000;
    const masks = tf.tensor2d(live, [graph.nDst, graph.nSrc]);
    const plain = () => model.forward(clean.tokens, { lastPositionOnly: true, lastQueryOnly: true }).dispose();
    const masked = () => tf.tidy(() => engine.maskedForward({ run: clean, patch: corrupted.sources, masks })).dispose();
    const r = equivalents(plain, masked, tiny ? 2 : 7);
    log(`${name}: ${graph.nEdges} edges, batch ${B} × ${P}: plain ${fmt(r.plainMs, 1)} ms, masked/plain ${fmt(r.ratio)}× (goal ≤ 1.5× on the Llama shape)`);
    tf.dispose(masks);
    clean.dispose();
    corrupted.dispose();
    engine.dispose();
    model.dispose();
  }
}

/** EAP in plain forward passes (of the whole batch, logits at every position, as the GPT-2 figures). */
export async function benchFamilyAttribution(log: (line: string) => void): Promise<void> {
  for (const { name, build } of models()) {
    const model = build();
    const graph = graphForModel(model.cfg);
    const [B, P] = [16, Math.min(16, model.cfg.nCtx)];
    const data = pairs(B, P, model.cfg.dVocab);
    const tokens = model.tokens(data.clean);
    const plain = () => model.forward(tokens).dispose();
    const input = { model, graph, data };
    const r = equivalents(plain, () => eap(input, { metric: 'logit-diff' }), tiny ? 2 : 5);
    const path = eap(input, { metric: 'logit-diff' }).gradient;
    log(`${name}: EAP (${path} gradient) ${fmt(r.ratio)} forward-pass equivalents (goal ≤ 3.5 on the Llama shape); plain forward ${fmt(r.plainMs, 1)} ms`);
    tokens.dispose();
    model.dispose();
  }
}
