import { oneOf, outFile, readNumber, str } from '../flags.js';
import { dataOptions, modelOption, numberFlag, readData, readWorkers, workersOption } from '../options.js';
import { redisOptions, withShardRunner } from '../shard-runner.js';
import type { ShardRunner } from '../../scale/index.js';
import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import type { AttributionMethodKey } from '../../attribution/registry.js';

/**
 * `circuitry attribute`: scores every edge of the model's graph with EAP or EAP-IG and writes the
 * circuit JSON (every edge with its `score`; in_graph from --top / --threshold).
 */
export const attributeCommand: Command = {
  command: 'attribute',
  describe: 'score every edge with attribution patching (EAP, EAP-IG) and write the circuit JSON',
  builder: (y) =>
    redisOptions(workersOption(dataOptions(modelOption(y))), 'the attribution')
      .option('method', { type: 'string', default: 'eap', describe: 'a method of the attribution registry: eap | eap-ig (inputs interpolated) | eap-ig-activations (masks interpolated)' })
      .option('steps', numberFlag('integration steps m of eap-ig / eap-ig-activations (default 5)'))
      .option('interpolation', { type: 'string', requiresArg: true, describe: 'eap-ig steps: eap-ig (α = k/m, k = 0..m−1, as EAP-IG; default) | run (k = 1..m: m = 1 is EAP)' })
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | kl' })
      .option('direction', { type: 'string', default: 'noise', describe: 'noise: run clean, patch in corrupted (EAP); denoise: run corrupted, patch in clean' })
      .option('ablation', { type: 'string', default: 'patch', describe: "what a patched edge carries: patch (the other run's value) | zero | mean" })
      .option('top', numberFlag('put the N edges with the largest |score| in the circuit'))
      .option('threshold', numberFlag('put every edge with |score| ≥ T in the circuit'))
      .option('greedy', { type: 'boolean', default: false, describe: 'with --top: grow the circuit greedily from the logits (EAP-IG)' })
      .option('prune', { type: 'boolean', default: false, describe: 'drop selected edges that do not connect input to logits' })
      .option('nodes', { type: 'boolean', default: false, describe: 'also score nodes (node attribution patching) into the file' })
      .option('gradient', { type: 'string', default: 'auto', describe: 'how gradients are taken: auto | fused | split | mask' })
      .option('batch-size', numberFlag('prompts per pass (default: all, at most 32)'))
      .option('significance', { type: 'boolean', default: false, describe: 'per-edge bootstrap CIs, p-values and FDR q-values over the prompts (eap and eap-ig-activations), in meta.edge_significance' })
      .option('resamples', numberFlag('resamples for --significance', 10000))
      .option('alpha', numberFlag('FDR level for --significance', 0.05))
      .option('correction', { type: 'string', default: 'bh', describe: 'multiple comparisons for --significance: bh | bonferroni | none' })
      .option('resample-seed', numberFlag('seed of the --significance resampling', 0))
      .option('out', { type: 'string', demandOption: true, describe: 'the circuit JSON file to write' })
      .example('circuitry attribute --model mini-gpt2 --task ioi -n 16 --method eap-ig --steps 5 --top 100 --out eap.json', 'EAP-IG scores, top 100 edges in the circuit'),
  run: (args) => withShardRunner(args, readWorkers(args), (runner) => runAttribute(args, runner)),
};

async function runAttribute(args: Record<string, unknown>, runner: ShardRunner | undefined): Promise<number> {

  // Flags first: every mistake that needs no model is reported before anything loads;
  // outputs and numbers before the library is even imported.
  const out = outFile(args, true, 'out', 'the circuit JSON file to write')!;
  const steps = readNumber(args, 'steps', 'count', { max: 1000 });
  const interpolation = str(args, 'interpolation') === undefined ? undefined : oneOf(args, 'interpolation', ['eap-ig', 'run'] as const, 'eap-ig');
  const direction = oneOf(args, 'direction', ['noise', 'denoise'] as const, 'noise');
  const ablation = oneOf(args, 'ablation', ['patch', 'zero', 'mean'] as const, 'patch');
  const gradient = oneOf(args, 'gradient', ['auto', 'fused', 'split', 'mask'] as const, 'auto');
  const top = readNumber(args, 'top', 'index');
  const threshold = readNumber(args, 'threshold', 'finite');
  const greedy = args.greedy === true;
  const prune = args.prune === true;
  const batchSize = readNumber(args, 'batch-size', 'count');
  const significance = args.significance === true;
  const resamples = readNumber(args, 'resamples', 'count') ?? 10000;
  const alpha = readNumber(args, 'alpha', 'fraction') ?? 0.05;
  const correction = oneOf(args, 'correction', ['bh', 'bonferroni', 'none'] as const, 'bh');
  const resampleSeed = readNumber(args, 'resample-seed', 'integer') ?? 0;
  const workers = readWorkers(args);
  const data = (await readData(args))!;
  const { parseMetricName } = await import('../../metrics/index.js');
  const { attributionMethod } = await import('../../attribution/registry.js');
  const method = attributionMethod(str(args, 'method') ?? 'eap', '--method').key as AttributionMethodKey;
  const integrated = attributionMethod(method).integrated;
  if (steps !== undefined && !integrated) throw new CircuitryError(`--steps: method ${method} takes no integration steps (use --method eap-ig or eap-ig-activations)`);
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');
  if (metric === 'accuracy') throw new CircuitryError("--metric: accuracy has zero gradient everywhere, so attribution cannot use it; use logit-diff, prob, logprob or kl");
  if (gradient === 'mask' && method === 'eap-ig') throw new CircuitryError("--gradient mask: eap-ig interpolates input embeddings, which the mask gradient cannot; use auto, fused or split (or --method eap-ig-activations)");
  if (significance && method !== 'eap' && method !== 'eap-ig-activations') throw new CircuitryError(`--significance: supported for --method eap and eap-ig-activations, not ${method}`);
  const { checkSelection } = await import('../../attribution/circuit.js');
  const selection = { ...(top !== undefined ? { top } : {}), ...(threshold !== undefined ? { threshold } : {}), greedy, prune };
  checkSelection(selection);

  const [{ backendAndModel, datasetFor, describeData }, { graphForModel }, attribution, { circuitToJson, writeCircuitFile }, { provenance }] = await Promise.all([
    import('../load.js'),
    import('../../graph/graph.js'),
    import('../../attribution/index.js'),
    import('../../graph/circuit-json.js'),
    import('../../graph/provenance.js'),
  ]);
  const t0 = performance.now();
  const { loaded } = await backendAndModel(args, str(args, 'model')!, { shareWeights: workers !== 1 });
  const { model } = loaded;
  const { Executor } = await import('../../scale/index.js');
  const executor = new Executor(loaded, workers, { runner });
  try {
    const ds = await datasetFor(loaded, data);
    const cfg = model.cfg;
    const graph = graphForModel(cfg);
    checkSelection(selection, graph.nEdges);
    const loadSeconds = (performance.now() - t0) / 1000;
    console.log(`model: ${loaded.name} (${cfg.nLayers} layers, ${cfg.nHeads} heads, d_model ${cfg.dModel}; ${graph.nEdges} edges); dataset: ${describeData(ds)}`);
    if (ablation === 'patch') {
      // the other run's values are patched in: clean and corrupted must differ under the metric
      // before any gradient is spent on them
      const { checkMetricGap, unpatchedMetrics } = await import('../../metrics/index.js');
      const gap = unpatchedMetrics(model, ds, metric, batchSize);
      checkMetricGap(metric, gap.clean, gap.corrupted, ds.source);
    }
    const options = { metric, direction, ablation, gradient, ...(steps !== undefined ? { steps } : {}), ...(interpolation ? { interpolation } : {}), ...(batchSize !== undefined ? { batchSize } : {}) };
    const result = await executor.attribute(graph, ds, method, options);
    for (const w of result.warnings) console.error(`warning: ${w}`);
    let nodeScores: Float32Array | undefined;
    let nodeSeconds: number | undefined;
    if (args.nodes === true) {
      const nodes = attribution.attributeNodes(model, ds, { metric, direction, ablation, ...(batchSize !== undefined ? { batchSize } : {}) });
      nodeScores = attribution.nodeScoresForGraph(nodes, graph);
      nodeSeconds = nodes.seconds;
    }
    const fmt = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toPrecision(4));
    const [clean, corrupted] = direction === 'noise' ? [result.baseMetric, result.patchedMetric] : [result.patchedMetric, result.baseMetric];
    console.log(`${metric}: clean ${fmt(clean)}, corrupted ${fmt(ablation === 'patch' || direction === 'denoise' ? corrupted : undefined)}; ${method}${integrated ? ` (${result.steps} steps)` : ''}, ${direction}${ablation === 'patch' ? '' : `, ${ablation} ablation`}, ${result.gradient} gradients`);
    const ranked = graph.edges.map((e) => ({ name: e.name, score: result.scores[e.index] })).sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
    const shown = ranked.slice(0, 10);
    const w = Math.max(4, ...shown.map((r) => r.name.length));
    console.log(`\n${'edge'.padEnd(w)}  ${'score'.padStart(11)}`);
    for (const r of shown) console.log(`${r.name.padEnd(w)}  ${fmt(r.score).padStart(11)}`);
    const circuit = attribution.attributionCircuit(result, selection, { dModel: cfg.dModel, ...(nodeScores ? { nodeScores } : {}) });
    let inGraph = 0;
    for (const e of graph.edges) inGraph += circuit.inGraph[e.index];
    console.log(`\n${graph.nEdges} edges scored in ${result.forwardPasses} forward + ${result.backwardPasses} backward passes, ${result.seconds.toFixed(2)} s; ${inGraph} in the circuit`);
    const meta = attribution.attributionMeta(result, {
      ...provenance({ model: loaded, dataset: ds, timings: { load: loadSeconds, ...(nodeSeconds !== undefined ? { nodes: nodeSeconds } : {}) } }),
      task: ds.name,
      selection,
      ...(batchSize !== undefined ? { batchSize } : {}),
    });
    if (significance && (method === 'eap' || method === 'eap-ig-activations')) {
      const { edgeAttributionSignificance } = await import('../../interventions/sweep-significance.js');
      const sig = edgeAttributionSignificance({ model, graph, data: ds }, {
        metric, direction, ablation, method, ...(steps !== undefined ? { steps } : {}),
        resamples, alpha, seed: resampleSeed, correction,
      });
      meta.edge_significance = { summary: sig.significance, edges: Object.fromEntries(sig.edges.map((e, i) => [e, sig.components[i]])) };
      console.log(`significance: ${sig.significance.n_significant} of ${graph.nEdges} edges at ${sig.significance.correction} level ${sig.significance.alpha} (${sig.significance.test}, ${sig.significance.n_examples} prompts)`);
      for (const w of sig.significance.warnings) console.log(`  warning: ${w}`);
    }
    writeCircuitFile(out, circuitToJson(circuit, meta));
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    await executor.close();
    model.dispose();
  }
}
