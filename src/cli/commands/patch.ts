import { fmt, jsonText, oneOf, outFile, positionNames, readNumber, str } from '../flags.js';
import { dataOptions, modelOption, numberFlag, readData, readWorkers, workersOption } from '../options.js';
import { redisOptions, withShardRunner } from '../shard-runner.js';
import type { ShardRunner } from '../../scale/index.js';
import type { MaskEvaluator } from '../../patching/patcher.js';
import type { SignificanceSummary } from '../../interventions/sweep-significance.js';
import type { Command } from './types.js';

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
    redisOptions(workersOption(dataOptions(modelOption(y))), 'the patched passes')
      .option('sweep', { type: 'string', demandOption: true, describe: SWEEP_HELP })
      .option('direction', { type: 'string', default: 'denoise', describe: 'denoise: run corrupted, patch in clean (TransformerLens); noise: run clean, patch in corrupted' })
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | accuracy | kl' })
      .option('ablation', { type: 'string', default: 'patch', describe: "what a patched component carries: patch (the other run's value) | zero | mean (the other run's dataset mean)" })
      .option('batch-size', numberFlag('prompts per forward pass (default: all, at most 64)'))
      .option('top', numberFlag('components shown in the table', 10))
      .option('significance', { type: 'boolean', default: false, describe: 'per-component bootstrap CIs, p-values (sign-flip permutation test) and FDR q-values over the prompts' })
      .option('resamples', numberFlag('resamples for --significance', 10000))
      .option('alpha', numberFlag('FDR level for --significance', 0.05))
      .option('correction', { type: 'string', default: 'bh', describe: 'multiple comparisons for --significance: bh | bonferroni | none' })
      .option('resample-seed', numberFlag('seed of the --significance resampling', 0))
      .option('out', { type: 'string', demandOption: true, describe: 'the JSON file to write' })
      .example('circuitry patch --model mini-gpt2 --task ioi -n 16 --sweep heads --out heads.json', 'head-output sweep, denoising')
      .example('circuitry patch --model mini-gpt2 --dataset pairs.jsonl --sweep neurons:1 --direction noise --out n1.json', 'every neuron of MLP 1, noising'),
  // the implementation imports tfjs and the library lazily, so --help stays instant
  run: (args) => withShardRunner(args, readWorkers(args), (runner) => runPatch(args, runner)),
};


async function runPatch(args: Record<string, unknown>, runner: ShardRunner | undefined): Promise<number> {
  // Flags first: every mistake that needs no model is reported before anything loads;
  // outputs and numbers before the library is even imported.
  const out = outFile(args)!;
  const direction = oneOf(args, 'direction', ['denoise', 'noise'] as const, 'denoise');
  const ablation = oneOf(args, 'ablation', ['patch', 'zero', 'mean'] as const, 'patch');
  const batchSize = readNumber(args, 'batch-size', 'count');
  const top = readNumber(args, 'top', 'index') ?? 10;
  const significance = args.significance === true;
  const resamples = readNumber(args, 'resamples', 'count') ?? 10000;
  const alpha = readNumber(args, 'alpha', 'fraction') ?? 0.05;
  const correction = oneOf(args, 'correction', ['bh', 'bonferroni', 'none'] as const, 'bh');
  const resampleSeed = readNumber(args, 'resample-seed', 'integer') ?? 0;
  const workers = readWorkers(args);
  const data = (await readData(args))!;
  const [{ parseSweep, sweepName, planSweep, runSweep, topComponents, sweepToMeta }, { parseMetricName }] = await Promise.all([
    import('../../patching/sweeps.js'),
    import('../../metrics/index.js'),
  ]);
  const spec = parseSweep(str(args, 'sweep') ?? '', '--sweep');
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');

  const [{ backendAndModel, datasetFor, describeData }, { graphForModel }, { Patcher }, { Executor, PooledPatcher }, { createProgress }, { writeFileAtomic }, { provenance }] = await Promise.all([
    import('../load.js'),
    import('../../graph/graph.js'),
    import('../../patching/patcher.js'),
    import('../../scale/index.js'),
    import('../progress.js'),
    import('../../io/files.js'),
    import('../../graph/provenance.js'),
  ]);
  const t0 = performance.now();
  const { loaded } = await backendAndModel(args, str(args, 'model')!, { shareWeights: workers !== 1 });
  const { model, tokenizer } = loaded;
  const executor = new Executor(loaded, workers, { runner });
  let patcher: MaskEvaluator | undefined;
  try {
    const ds = await datasetFor(loaded, data);
    const cfg = model.cfg;
    const positionLabels = positionNames(ds.clean[0], tokenizer);
    // checks the sweep against the model (neuron layer in range, MLPs present) before any work
    if (spec.kind !== 'edges') planSweep(spec, cfg, ds.seqLen, positionLabels);
    const graph = graphForModel(cfg);
    console.log(`model: ${loaded.name} (${cfg.nLayers} layers, ${cfg.nHeads} heads, d_model ${cfg.dModel}); dataset: ${describeData(ds)}`);
    patcher = await executor.patcher(graph, ds, { metric, direction, ablation, ...(batchSize !== undefined ? { batchSize } : {}) });
    const p = patcher;
    const pooled = executor.threads > 0 ? `, on ${executor.threads} workers` : '';
    console.log(`${metric}: clean ${fmt(p.cleanMetric)}, corrupted ${fmt(p.corruptedMetric)}; sweep ${sweepName(spec)}, ${direction}${ablation === 'patch' ? '' : `, ${ablation} ablation`}${pooled}`);
    // patching the other run's values in: they must differ from the run's under the metric
    if (ablation === 'patch') (await import('../../metrics/index.js')).checkMetricGap(metric, p.cleanMetric, p.corruptedMetric, ds.source);
    const progress = createProgress(`patch ${sweepName(spec)}`);
    const t1 = performance.now();
    let result: ReturnType<typeof runSweep> & { significance?: SignificanceSummary };
    try {
      if (significance) {
        const sig = await import('../../interventions/sweep-significance.js');
        const opts = { onProgress: progress.update, positionLabels, resamples, alpha, correction, seed: resampleSeed };
        if (p instanceof PooledPatcher) {
          // every prompt's value from the workers, the statistics here
          (await import('../../interventions/significance.js')).resolveSignificanceOptions(opts);
          const layout = sig.significanceLayout(graph, cfg, ds.seqLen, spec, positionLabels);
          result = sig.significantSweep(p, layout, await p.evaluatePerExample(layout.targets, { onProgress: progress.update }), opts);
        } else if (p instanceof Patcher) result = sig.sweepWithSignificance(p, spec, opts);
        else throw new Error('patch: expected a Patcher');
      } else if (p instanceof PooledPatcher) {
        const plan = spec.kind === 'edges' ? undefined : planSweep(spec, cfg, ds.seqLen, positionLabels);
        result = await p.sweep(spec, plan!, { positionLabels, onProgress: progress.update });
      } else if (!(p instanceof Patcher)) {
        throw new Error('patch: expected a Patcher');
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
      ...provenance({ model: loaded, dataset: ds, timings: { load: (t1 - t0) / 1000, sweep: seconds } }),
      sweep: result.kind,
      direction,
      metric,
      ablation,
      batch_size: batchSize ?? null,
      clean: result.clean,
      corrupted: result.corrupted,
      forward_passes: result.forwardPasses,
      cache_passes: result.cachePasses,
      rows: result.rows,
      cols: result.cols,
      components: Object.fromEntries(result.components.map((c) => [c.name, { ...c, name: undefined }])),
      significance: result.significance,
      // ready for a circuit file's meta.sweeps
      meta_sweep: sweepToMeta(result),
    };
    writeFileAtomic(out, jsonText(file));
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    patcher?.dispose();
    await executor.close();
    model.dispose();
  }
}
