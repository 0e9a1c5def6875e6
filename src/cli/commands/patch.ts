import { inFile, outFile, str } from '../flags.js';
import type { SignificanceSummary } from '../../interventions/sweep-significance.js';
import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';

const SWEEP_HELP = 'resid | attn-out | mlp-out | heads | heads-by-pos | qkv | pattern | neurons:L | edges';

/**
 * `circuitry patch`: one activation-patching sweep (or every single edge) over a JSONL dataset.
 * Prints the backend and the strongest components; writes every component's metric, delta and
 * recovery with provenance to --out (atomically: nothing is written when anything fails).
 */
export const patchCommand: Command = {
  command: 'patch',
  describe: 'activation-patching sweeps (layer, position, head, q/k/v, pattern, neuron) or every single edge; writes metric, delta and recovery per component',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'a zoo name, a local HuggingFace folder or a hub id' })
      .option('dataset', { type: 'string', demandOption: true, describe: 'JSONL file of {"clean", "corrupted", "answer", "wrong"} pairs' })
      .option('sweep', { type: 'string', demandOption: true, describe: SWEEP_HELP })
      .option('direction', { type: 'string', default: 'denoise', describe: 'denoise: run corrupted, patch in clean (TransformerLens); noise: run clean, patch in corrupted' })
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | accuracy | kl' })
      .option('ablation', { type: 'string', default: 'patch', describe: "what a patched component carries: patch (the other run's value) | zero | mean (the other run's dataset mean)" })
      .option('batch-size', { type: 'number', describe: 'prompts per forward pass (default: all, at most 64)' })
      .option('top', { type: 'number', default: 10, describe: 'components shown in the table' })
      .option('significance', { type: 'boolean', default: false, describe: 'per-component bootstrap CIs, p-values (sign-flip permutation test) and FDR q-values over the prompts' })
      .option('resamples', { type: 'number', default: 10000, describe: 'resamples for --significance' })
      .option('alpha', { type: 'number', default: 0.05, describe: 'FDR level for --significance' })
      .option('correction', { type: 'string', default: 'bh', describe: 'multiple comparisons for --significance: bh | bonferroni | none' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for --significance resampling' })
      .option('out', { type: 'string', demandOption: true, describe: 'the JSON file to write' })
      .example('circuitry patch --model gpt2 --dataset ioi.jsonl --sweep heads --out heads.json', 'head-output sweep, denoising')
      .example('circuitry patch --model gpt2 --dataset ioi.jsonl --sweep neurons:9 --direction noise --out n9.json', 'every neuron of MLP 9, noising'),
  // the implementation imports tfjs and the library lazily, so --help stays instant
  run: (args) => runPatch(args),
};


async function runPatch(args: Record<string, unknown>): Promise<number> {
  const [{ parseSweep, sweepName, planSweep, runSweep, topComponents, sweepToMeta }, { parseMetricName }] = await Promise.all([
    import('../../patching/sweeps.js'),
    import('../../metrics/index.js'),
  ]);

  // Flags first: every mistake that needs no model is reported before anything loads.
  const spec = parseSweep(str(args, 'sweep') ?? '', '--sweep');
  const direction = str(args, 'direction') ?? 'denoise';
  if (direction !== 'noise' && direction !== 'denoise') throw new CircuitryError(`--direction: expected noise or denoise, got '${direction}'`);
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');
  const ablation = str(args, 'ablation') ?? 'patch';
  if (ablation !== 'patch' && ablation !== 'zero' && ablation !== 'mean') throw new CircuitryError(`--ablation: expected patch, zero or mean, got '${ablation}'`);
  const batchSize = args['batch-size'];
  if (batchSize !== undefined && !(typeof batchSize === 'number' && Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new CircuitryError(`--batch-size: expected a positive integer, got ${JSON.stringify(batchSize)}`);
  }
  const top = Number(args.top ?? 10);
  if (!Number.isInteger(top) || top < 0) throw new CircuitryError(`--top: expected a non-negative integer, got ${JSON.stringify(args.top)}`);
  const out = outFile(args)!;
  const datasetPath = inFile(args, 'dataset', 'a JSONL file');
  if (!datasetPath) throw new CircuitryError('--dataset: give a JSONL file of clean/corrupted pairs');
  const modelName = str(args, 'model');
  if (!modelName) throw new CircuitryError('--model: give a zoo name, a model folder or a hub id');

  const [{ initBackend }, { loadModel }, { loadJsonlDataset, datasetHash }, { graphForModel }, { Patcher }, { createProgress }, { writeFileAtomic }, { VERSION }] = await Promise.all([
    import('../../backend/index.js'),
    import('../../model/load.js'),
    import('../../tasks/index.js'),
    import('../../graph/graph.js'),
    import('../../patching/patcher.js'),
    import('../../patching/progress.js'),
    import('../../graph/circuit-json.js'),
    import('../../version.js'),
  ]);
  const backend = await initBackend(str(args, 'backend'));
  console.log(`backend: ${backend}`);
  const t0 = performance.now();
  const loaded = await loadModel(modelName, { log: (m) => console.error(m) });
  const { model, tokenizer } = loaded;
  let patcher: InstanceType<typeof Patcher> | undefined;
  try {
    const ds = loadJsonlDataset(datasetPath, tokenizer);
    const cfg = model.cfg;
    const positionLabels = positionNames(ds.clean[0], (id) => tokenizer.tokenString(id));
    // checks the sweep against the model (neuron layer in range, MLPs present) before any work
    if (spec.kind !== 'edges') planSweep(spec, cfg, ds.seqLen, positionLabels);
    const graph = graphForModel(cfg);
    console.log(`model: ${loaded.name} (${cfg.nLayers} layers, ${cfg.nHeads} heads, d_model ${cfg.dModel}); dataset: ${datasetPath} (${ds.clean.length} pairs of ${ds.seqLen} tokens)`);
    patcher = new Patcher(model, graph, ds, { metric, direction, ablation, batchSize: batchSize as number | undefined });
    const p = patcher;
    console.log(`${metric}: clean ${fmt(p.cleanMetric)}, corrupted ${fmt(p.corruptedMetric)}; sweep ${sweepName(spec)}, ${direction}${ablation === 'patch' ? '' : `, ${ablation} ablation`}`);
    const progress = createProgress(`patch ${sweepName(spec)}`);
    const t1 = performance.now();
    let result: ReturnType<typeof runSweep> & { significance?: SignificanceSummary };
    try {
      if (args.significance) {
        const { sweepWithSignificance } = await import('../../interventions/sweep-significance.js');
        const correction = str(args, 'correction') as 'bh' | 'bonferroni' | 'none';
        result = sweepWithSignificance(p, spec, { onProgress: progress.update, positionLabels, resamples: args.resamples as number, alpha: args.alpha as number, correction, seed: args.seed as number });
      } else {
        result = runSweep(p, spec, { onProgress: progress.update, positionLabels });
      }
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t1) / 1000;
    if (result.significance) {
      const sig = result.significance;
      console.log(`significance: ${sig.n_significant} of ${result.components.length} components at ${sig.correction} level ${sig.alpha} (${sig.test}, ${sig.resamples} resamples, ${sig.n_examples} prompts)`);
      for (const w of sig.warnings) console.log(`  warning: ${w}`);
    }

    const best = topComponents(result, top);
    if (best.length > 0) {
      const w = Math.max(9, ...best.map((c) => c.name.length));
      console.log(`\n${'component'.padEnd(w)}  ${'metric'.padStart(10)}  ${'delta'.padStart(10)}  ${'recovery'.padStart(9)}`);
      for (const c of best) console.log(`${c.name.padEnd(w)}  ${fmt(c.metric).padStart(10)}  ${fmt(c.delta).padStart(10)}  ${fmt(c.recovery).padStart(9)}`);
      console.log('');
    }
    const passes = (n: number) => `${n} forward pass${n === 1 ? '' : 'es'}`;
    console.log(`${result.components.length} components in ${passes(result.forwardPasses)} (+${result.cachePasses} unpatched) in ${seconds.toFixed(1)} s`);

    const file = {
      tool: { name: 'circuitry', version: VERSION },
      created: new Date().toISOString(),
      backend,
      model: { name: loaded.name, hash: loaded.source.hash, source: loaded.source.kind },
      dataset: { name: ds.name, path: datasetPath, hash: datasetHash(ds), n_examples: ds.clean.length, seq_len: ds.seqLen },
      sweep: result.kind,
      direction,
      metric,
      ablation,
      batch_size: batchSize ?? null,
      clean: result.clean,
      corrupted: result.corrupted,
      forward_passes: result.forwardPasses,
      cache_passes: result.cachePasses,
      timings: { load: (t1 - t0) / 1000, sweep: seconds },
      rows: result.rows,
      cols: result.cols,
      components: Object.fromEntries(result.components.map((c) => [c.name, { ...c, name: undefined }])),
      significance: result.significance,
      // ready for a circuit file's meta.sweeps
      meta_sweep: sweepToMeta(result),
    };
    writeFileAtomic(out, JSON.stringify(file, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1) + '\n');
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    patcher?.dispose();
    model.dispose();
  }
}

/** Column labels for positions: "i:token" (unique even when tokens repeat). */
function positionNames(ids: readonly number[], str: (id: number) => string): string[] {
  return ids.map((id, i) => {
    let t: string;
    try {
      t = str(id);
    } catch {
      t = String(id);
    }
    return `${i}:${t}`;
  });
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(3) : x.toFixed(4);
}
