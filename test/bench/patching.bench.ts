import * as tf from '@tensorflow/tfjs';
import { randomGpt2, GPT2_SMALL } from '../helpers/random-model.js';
import { CircuitGraph } from '../../src/graph/graph.js';
import { PatchingEngine } from '../../src/patching/engine.js';
import { Patcher } from '../../src/patching/patcher.js';
import { timeMs, fmt } from './timing.js';

function rows(B: number, P: number, vocab: number, salt: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, p) => (b * 7919 + p * 104729 + salt * 31) % vocab));
}

/** The masked forward against the plain forward, and the single-edge sweep in forward passes. */
export async function benchPatching(log: (line: string) => void): Promise<void> {
  {
    const model = randomGpt2({ ...GPT2_SMALL, seed: 2 });
    const graph = new CircuitGraph({ nLayers: 12, nHeads: 12, hasMlp: true, qkv: true });
    const engine = new PatchingEngine(model, graph);
    const [B, P] = [8, 16];
    const clean = engine.cacheRun(model.tokens(rows(B, P, GPT2_SMALL.vocab, 1)));
    const corrupted = engine.cacheRun(model.tokens(rows(B, P, GPT2_SMALL.vocab, 2)));
    const live = graph.denseEdgeArray(0);
    for (const e of graph.edges) live[e.index] = 0.25 + 0.5 * ((e.index * 2654435761) % 1000) / 1000;
    const masks = tf.tensor2d(live, [graph.nDst, graph.nSrc]);
    const plain = await timeMs(() => model.forward(clean.tokens).dispose());
    const masked = await timeMs(() => tf.tidy(() => engine.maskedForward({ run: clean, patch: corrupted.sources, masks })).dispose());
    log(`GPT-2-small shape, ${graph.nEdges} edges, batch ${B} × ${P}`);
    log(`plain forward ${fmt(plain, 0)} ms; masked forward, all ${graph.nEdges} masks live ${fmt(masked, 0)} ms`);
    log(`ratio masked/plain: ${fmt(masked / plain)}×  (bar ≤ 1.5×)`);
    tf.dispose([masks]);
    clean.dispose();
    corrupted.dispose();
    model.dispose();
  }
  {
    const spec = { nLayers: 4, nHeads: 8, dModel: 128, dMlp: 512, vocab: 512, nCtx: 32, seed: 3 };
    const model = randomGpt2(spec);
    const graph = new CircuitGraph({ nLayers: 4, nHeads: 8, hasMlp: true, qkv: true });
    const [B, P] = [16, 12];
    const data = { clean: rows(B, P, spec.vocab, 1), corrupted: rows(B, P, spec.vocab, 2), answers: rows(B, 1, spec.vocab, 3), wrongs: rows(B, 1, spec.vocab, 4) };
    const patcher = new Patcher(model, graph, data, { metric: 'logit-diff', batchSize: B });
    const masks = graph.edges.map((e) => {
      const m = patcher.fullMask();
      m[e.index] = 0;
      return m;
    });
    const plain = await timeMs(() => model.forward(data.clean).dispose());
    const passes0 = patcher.forwardPasses;
    const sweep = await timeMs(() => patcher.evaluate(masks), 1, 0);
    log(`single-edge sweep, ${graph.nEdges} edges (4 layers × 8 heads, d 128), batch ${B} × ${P}:`);
    log(`${fmt(sweep / 1000, 1)} s = ${fmt(sweep / plain, 0)} forward-pass equivalents (${fmt(sweep / plain / graph.nEdges)} per edge), in ${patcher.forwardPasses - passes0} stacked passes`);
    patcher.dispose();
    model.dispose();
  }
}
