import { graphForModel } from '../../src/graph/graph.js';
import { loadModel } from '../../src/model/load.js';
import { resolveDataset } from '../../src/discovery/data.js';
import { screenEdges } from '../../src/discovery/screen.js';
import { runAcdc } from '../../src/discovery/acdc.js';
import { setComplementMix } from '../../src/patching/buffered.js';
import { Patcher } from '../../src/patching/patcher.js';
import { gpt2SmallShapeFolder } from './scale.bench.js';
import { fmt } from './timing.js';

/**
 * ACDC's prune as the pipeline runs it (every non-candidate edge patched) on the GPT-2-small
 * shape, in this process, four ways in one run: the direct sums over every source with the whole
 * vocabulary unembedded (as before), the complement sums, the complement with logit difference's
 * tokens alone, all three guessing 8 decisions ahead, and then the last guessing only as far as
 * one pass stacks (on this shape one mask: no guess, no wasted pass). Same decisions; the ratios
 * of wall times.
 * CIRCUITRY_BENCH_PRUNE_TOP sets the candidates (default 150), CIRCUITRY_BENCH_PRUNE_N the prompts (default 8).
 */
export async function benchPrune(log: (line: string) => void): Promise<void> {
  const top = Number(process.env.CIRCUITRY_BENCH_PRUNE_TOP ?? 150);
  const n = Number(process.env.CIRCUITRY_BENCH_PRUNE_N ?? 8);
  const loaded = await loadModel(gpt2SmallShapeFolder(log));
  const data = resolveDataset(loaded, { task: { name: 'ioi', n, seed: 1, options: { corruption: 'abc' } } });
  const graph = graphForModel(loaded.model.cfg);
  const patchers = {
    whole: new Patcher(loaded.model, graph, data, { metric: 'logit-diff', batchSize: 8, wholeVocabulary: true }),
    subset: new Patcher(loaded.model, graph, data, { metric: 'logit-diff', batchSize: 8 }),
  };
  const before = setComplementMix('auto');
  try {
    const scores = await screenEdges(patchers.subset, 'eap', 1);
    const candidates = [...graph.edges].sort((a, b) => Math.abs(scores[b.index]) - Math.abs(scores[a.index])).slice(0, top).map((e) => e.name);
    const tau = 0.02 * Math.abs(patchers.subset.cleanMetric - patchers.subset.corruptedMetric);
    log(`${loaded.name}: ${graph.nEdges} edges, ${data.clean.length} IOI pairs × ${data.seqLen} tokens, batch 8; ACDC over the EAP top ${top}, τ = ${fmt(tau, 4)}`);
    const ways = [
      { name: 'direct sums, whole vocabulary, 8 guessed', mix: 'never' as const, patcher: patchers.whole, speculate: 8 },
      { name: 'complement sums, whole vocabulary, 8 guessed', mix: 'auto' as const, patcher: patchers.whole, speculate: 8 },
      { name: 'complement sums, answer tokens alone, 8 guessed', mix: 'auto' as const, patcher: patchers.subset, speculate: 8 },
      { name: `complement sums, answer tokens alone, ${patchers.subset.masksPerPass} guessed (as one pass stacks)`, mix: 'auto' as const, patcher: patchers.subset, speculate: undefined },
    ];
    const seconds: number[] = [];
    const decisions = new Set<string>();
    for (const way of ways) {
      setComplementMix(way.mix);
      const t = performance.now();
      const r = await runAcdc(way.patcher, { tau, candidates, faith: 'abs-diff', skipUnused: true, ...(way.speculate ? { speculate: way.speculate } : {}) });
      seconds.push((performance.now() - t) / 1000);
      decisions.add(JSON.stringify(r.steps.map((s) => [s.edge, s.removed])));
      log(`  ${way.name}: ${fmt(seconds.at(-1)!)} s, ${r.forwardPasses} passes, ${r.kept.length} edges kept`);
    }
    log(`speed-up over the direct sums: complement ${fmt(seconds[0] / seconds[1])}×, with the answer tokens alone ${fmt(seconds[0] / seconds[2])}×, guessing as far as a pass stacks ${fmt(seconds[0] / seconds[3])}×; same decisions: ${decisions.size === 1 ? 'yes' : 'NO'}`);
  } finally {
    setComplementMix(before);
    patchers.whole.dispose();
    patchers.subset.dispose();
    loaded.model.dispose();
  }
}
