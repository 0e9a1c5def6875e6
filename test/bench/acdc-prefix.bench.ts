import { graphForModel } from '../../src/graph/graph.js';
import { loadModel } from '../../src/model/load.js';
import { resolveDataset } from '../../src/discovery/data.js';
import { screenEdges } from '../../src/discovery/screen.js';
import { runAcdc } from '../../src/discovery/acdc.js';
import { maskPatching } from '../../src/patching/path-patching.js';
import { Patcher } from '../../src/patching/patcher.js';
import { gpt2SmallShapeFolder } from './scale.bench.js';
import { fmt } from './timing.js';

/**
 * ACDC over the pipeline's candidates on the GPT-2-small shape (random weights, IOI, in this
 * process): every decision from the circuit's cached run, starting at its destination's layer
 * (Patcher.setBaseMask), against every decision as a full pass from layer 0. Same decisions;
 * the ratio of wall times. CIRCUITRY_BENCH_ACDC_TOP sets the candidates (default 60),
 * CIRCUITRY_BENCH_ACDC_MODEL the model (a zoo name; default the GPT-2-small shape).
 */
export async function benchAcdcPrefix(log: (line: string) => void): Promise<void> {
  const top = Number(process.env.CIRCUITRY_BENCH_ACDC_TOP ?? 60);
  const which = process.env.CIRCUITRY_BENCH_ACDC_MODEL ?? 'gpt2-small-shape';
  const loaded = await loadModel(which === 'gpt2-small-shape' ? gpt2SmallShapeFolder(log) : which);
  const data = resolveDataset(loaded, { task: { name: 'ioi', n: 16, seed: 1, options: { corruption: 'abc' } } });
  const graph = graphForModel(loaded.model.cfg);
  const patcher = new Patcher(loaded.model, graph, data, { metric: 'logit-diff', batchSize: 8 });
  try {
    const scores = await screenEdges(patcher, 'eap', 1);
    const candidates = [...graph.edges].sort((a, b) => Math.abs(scores[b.index]) - Math.abs(scores[a.index])).slice(0, top);
    const effects = await patcher.evaluateAsync(candidates.map((e) => maskPatching(patcher, [e])));
    const tau = 0.02 * Math.abs(patcher.cleanMetric - patcher.corruptedMetric);
    const expectKept = new Set(candidates.filter((_, i) => Math.abs(effects[i] - patcher.baseMetric) >= tau).map((e) => e.name));
    const opts = { tau, candidates: candidates.map((e) => e.name), faith: 'abs-diff' as const, skipUnused: true, expectKept };
    const layers = new Map<number, number>();
    for (const e of candidates) layers.set(graph.destinations[e.dst].layer, (layers.get(graph.destinations[e.dst].layer) ?? 0) + 1);
    log(`${loaded.name}: ${graph.nEdges} edges, ${data.clean.length} IOI pairs × ${data.seqLen} tokens, batch 8; ACDC over the top ${top} (destination layers ${[...layers].sort((a, b) => a[0] - b[0]).map(([l, n]) => `${l}:${n}`).join(' ')})`);
    // the same patcher with setBaseMask turned off: every pass from the first layer the mask patches
    const plain = Object.assign(Object.create(patcher) as Patcher, { setBaseMask: () => {} });
    const seconds = { plain: 0, prefix: 0 };
    const passes = { plain: 0, prefix: 0 };
    const kept: Record<string, string> = {};
    for (let round = 0; round < 2; round++) {
      for (const kind of round === 0 ? (['plain', 'prefix'] as const) : (['prefix', 'plain'] as const)) {
        const t = performance.now();
        const r = await runAcdc(kind === 'plain' ? plain : patcher, opts);
        seconds[kind] += (performance.now() - t) / 1000;
        passes[kind] = r.forwardPasses;
        kept[`${kind} ${round}`] = JSON.stringify(r.steps.map((s) => [s.edge, s.removed]));
      }
    }
    const same = new Set(Object.values(kept)).size === 1;
    log(`full passes ${fmt(seconds.plain / 2)} s (${passes.plain} passes), from the destination's layer ${fmt(seconds.prefix / 2)} s (${passes.prefix} passes): ${fmt(seconds.plain / seconds.prefix)}× faster; same decisions: ${same ? 'yes' : 'NO'}`);
  } finally {
    patcher.dispose();
    loaded.model.dispose();
  }
}
