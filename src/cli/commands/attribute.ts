import { inFile, num, oneOf, outFile, str } from '../flags.js';
import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';

const METHODS = ['eap', 'eap-ig', 'eap-ig-activations'] as const;

/**
 * `circuitry attribute`: scores every edge of the model's graph with EAP or EAP-IG and writes the
 * circuit JSON (every edge with its `score`; in_graph from --top / --threshold).
 */
export const attributeCommand: Command = {
  command: 'attribute',
  describe: 'score every edge with attribution patching (EAP, EAP-IG) and write the circuit JSON',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'a zoo name, a local HuggingFace folder or a hub id' })
      .option('dataset', { type: 'string', demandOption: true, describe: 'JSONL file of {"clean", "corrupted", "answer", "wrong"} pairs' })
      .option('method', { type: 'string', default: 'eap', describe: 'eap | eap-ig (inputs interpolated) | eap-ig-activations (masks interpolated)' })
      .option('steps', { type: 'number', describe: 'integration steps m of eap-ig / eap-ig-activations (default 5)' })
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | kl' })
      .option('direction', { type: 'string', default: 'noise', describe: 'noise: run clean, patch in corrupted (EAP); denoise: run corrupted, patch in clean' })
      .option('ablation', { type: 'string', default: 'patch', describe: "what a patched edge carries: patch (the other run's value) | zero | mean" })
      .option('top', { type: 'number', describe: 'put the N edges with the largest |score| in the circuit' })
      .option('threshold', { type: 'number', describe: 'put every edge with |score| ≥ T in the circuit' })
      .option('greedy', { type: 'boolean', default: false, describe: 'with --top: grow the circuit greedily from the logits (EAP-IG)' })
      .option('prune', { type: 'boolean', default: false, describe: 'drop selected edges that do not connect input to logits' })
      .option('nodes', { type: 'boolean', default: false, describe: 'also score nodes (node attribution patching) into the file' })
      .option('gradient', { type: 'string', default: 'auto', describe: 'how gradients are taken: auto | fused | split | mask' })
      .option('batch-size', { type: 'number', describe: 'prompts per pass (default: all, at most 32)' })
      .option('significance', { type: 'boolean', default: false, describe: 'per-edge bootstrap CIs, p-values and FDR q-values over the prompts (eap and eap-ig-activations), in meta.edge_significance' })
      .option('resamples', { type: 'number', default: 10000, describe: 'resamples for --significance' })
      .option('alpha', { type: 'number', default: 0.05, describe: 'FDR level for --significance' })
      .option('correction', { type: 'string', default: 'bh', describe: 'multiple comparisons for --significance: bh | bonferroni | none' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for --significance resampling' })
      .option('out', { type: 'string', demandOption: true, describe: 'the circuit JSON file to write' })
      .example('circuitry attribute --model tiny --dataset ioi.jsonl --method eap-ig --steps 5 --top 200 --out ioi.json', 'EAP-IG scores, top 200 edges in the circuit'),
  run: (args) => runAttribute(args),
};




async function runAttribute(args: Record<string, unknown>): Promise<number> {
  const { parseMetricName } = await import('../../metrics/index.js');

  // Flags first: every mistake that needs no model is reported before anything loads.
  const method = oneOf(args, 'method', METHODS, 'eap');
  const integrated = method !== 'eap';
  const steps = num(args, 'steps', 'an integer from 1 to 1000', (n) => Number.isInteger(n) && n >= 1 && n <= 1000);
  if (steps !== undefined && !integrated) throw new CircuitryError(`--steps: method eap takes no integration steps (use --method eap-ig or eap-ig-activations)`);
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');
  if (metric === 'accuracy') throw new CircuitryError("--metric: accuracy has zero gradient everywhere, so attribution cannot use it; use logit-diff, prob, logprob or kl");
  const direction = oneOf(args, 'direction', ['noise', 'denoise'] as const, 'noise');
  const ablation = oneOf(args, 'ablation', ['patch', 'zero', 'mean'] as const, 'patch');
  const gradient = oneOf(args, 'gradient', ['auto', 'fused', 'split', 'mask'] as const, 'auto');
  if (gradient === 'mask' && method === 'eap-ig') throw new CircuitryError("--gradient mask: eap-ig interpolates input embeddings, which the mask gradient cannot; use auto, fused or split (or --method eap-ig-activations)");
  const top = num(args, 'top', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
  const threshold = num(args, 'threshold', 'a number', () => true);
  const greedy = args.greedy === true;
  const prune = args.prune === true;
  const batchSize = num(args, 'batch-size', 'a positive integer', (n) => Number.isInteger(n) && n >= 1);
  const { checkSelection } = await import('../../attribution/circuit.js');
  const selection = { ...(top !== undefined ? { top } : {}), ...(threshold !== undefined ? { threshold } : {}), greedy, prune };
  checkSelection(selection);
  const out = outFile(args)!;
  const datasetPath = inFile(args, 'dataset', 'a JSONL file');
  if (!datasetPath) throw new CircuitryError('--dataset: give a JSONL file of clean/corrupted pairs');
  const modelName = str(args, 'model');
  if (!modelName) throw new CircuitryError('--model: give a zoo name, a model folder or a hub id');

  const [{ initBackend }, { loadModel }, { loadJsonlDataset, datasetHash }, { graphForModel }, attribution, { circuitToJson, writeCircuitFile }, { VERSION }] = await Promise.all([
    import('../../backend/index.js'),
    import('../../model/load.js'),
    import('../../tasks/index.js'),
    import('../../graph/graph.js'),
    import('../../attribution/index.js'),
    import('../../graph/circuit-json.js'),
    import('../../version.js'),
  ]);
  const backend = await initBackend(str(args, 'backend'));
  console.log(`backend: ${backend}`);
  const t0 = performance.now();
  const loaded = await loadModel(modelName, { log: (m) => console.error(m) });
  const { model, tokenizer } = loaded;
  try {
    const ds = loadJsonlDataset(datasetPath, tokenizer);
    const cfg = model.cfg;
    const graph = graphForModel(cfg);
    checkSelection(selection, graph.nEdges);
    const loadSeconds = (performance.now() - t0) / 1000;
    console.log(`model: ${loaded.name} (${cfg.nLayers} layers, ${cfg.nHeads} heads, d_model ${cfg.dModel}; ${graph.nEdges} edges); dataset: ${datasetPath} (${ds.clean.length} pairs of ${ds.seqLen} tokens)`);
    const options = { metric, direction, ablation, gradient, ...(steps !== undefined ? { steps } : {}), ...(batchSize !== undefined ? { batchSize } : {}) };
    const result = attribution.attributeEdges({ model, graph, data: ds }, method, options);
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
      tool: { name: 'circuitry', version: VERSION },
      backend,
      model: { name: loaded.name, hash: loaded.source.hash },
      dataset: { name: ds.name, hash: datasetHash(ds), n_examples: ds.clean.length, seq_len: ds.seqLen },
      timings: { load: loadSeconds, ...(nodeSeconds !== undefined ? { nodes: nodeSeconds } : {}) },
      selection,
      ...(batchSize !== undefined ? { batchSize } : {}),
    });
    if (args.significance === true) {
      if (method !== 'eap' && method !== 'eap-ig-activations') throw new CircuitryError(`--significance: supported for --method eap and eap-ig-activations, not ${method}`);
      const { edgeAttributionSignificance } = await import('../../interventions/sweep-significance.js');
      const sig = edgeAttributionSignificance({ model, graph, data: ds }, {
        metric, direction, ablation, method, ...(steps !== undefined ? { steps } : {}),
        resamples: args.resamples as number, alpha: args.alpha as number, seed: args.seed as number, correction: String(args.correction) as 'bh' | 'bonferroni' | 'none',
      });
      meta.edge_significance = { summary: sig.significance, edges: Object.fromEntries(sig.edges.map((e, i) => [e, sig.components[i]])) };
      console.log(`significance: ${sig.significance.n_significant} of ${graph.nEdges} edges at ${sig.significance.correction} level ${sig.significance.alpha} (${sig.significance.test}, ${sig.significance.n_examples} prompts)`);
      for (const w of sig.significance.warnings) console.log(`  warning: ${w}`);
    }
    writeCircuitFile(out, circuitToJson(circuit, meta));
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    model.dispose();
  }
}
