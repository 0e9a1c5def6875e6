import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import { dataOptions, modelOption, numberFlag, readData } from '../options.js';
import { fmt, jsonText, oneOf, outFile, readNumber, str } from '../flags.js';

/**
 * `circuitry search`: hierarchical activation patching — layers, then positions within the
 * layers that matter, then heads and neurons within those positions — recording every level
 * and the forward passes used against the full sweep's.
 */
export const searchCommand: Command = {
  command: 'search',
  describe: 'hierarchical patching: layers, then positions in the kept layers, then heads and neurons there; a fraction of the full sweep',
  builder: (y) =>
    dataOptions(
      modelOption(y)
        .option('direction', { type: 'string', default: 'denoise', describe: 'denoise: run corrupted, patch in clean | noise: run clean, patch in corrupted' })
        .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | accuracy | kl' })
        .option('ablation', { type: 'string', default: 'patch', describe: 'patch | zero | mean' })
        .option('floor', numberFlag("keep components whose |effect| is at least this share of the whole patch's effect", 0.1))
        .option('unit', { type: 'string', default: 'sublayer', describe: "first level: sublayer (each layer's attention and MLP output) | block (both at once)" })
        .option('finest', { type: 'string', default: 'both', describe: 'last level: heads | neurons | both' })
        .option('max-keep', numberFlag('keep at most this many components per level'))
        .option('batch-size', numberFlag('prompts per pass (default: all, at most 64)'))
        .option('out', { type: 'string', demandOption: true, describe: 'the JSON file to write' }),
    ).example('circuitry search --model planted-and --task both-colors -n 16 --direction noise --out search.json', 'down to heads and neurons'),
  run: (args) => runSearch(args),
};

async function runSearch(args: Record<string, unknown>): Promise<number> {
  const out = outFile(args)!;
  const direction = oneOf(args, 'direction', ['noise', 'denoise'] as const, 'denoise');
  const ablation = oneOf(args, 'ablation', ['patch', 'zero', 'mean'] as const, 'patch');
  const unit = oneOf(args, 'unit', ['sublayer', 'block'] as const, 'sublayer');
  const finest = oneOf(args, 'finest', ['heads', 'neurons', 'both'] as const, 'both');
  const floor = readNumber(args, 'floor', 'non-negative') ?? 0.1;
  const maxKeep = readNumber(args, 'max-keep', 'count');
  const batchSize = readNumber(args, 'batch-size', 'count');
  const data = (await readData(args))!;
  const { parseMetricName } = await import('../../metrics/index.js');
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');

  const [{ backendAndModel, datasetFor, describeData }, { graphForModel }, { Patcher }, { hierarchicalSearch }, { createProgress }, { writeFileAtomic }, { provenance }] = await Promise.all([
    import('../load.js'),
    import('../../graph/graph.js'),
    import('../../patching/patcher.js'),
    import('../../interventions/hierarchical.js'),
    import('../progress.js'),
    import('../../io/files.js'),
    import('../../graph/provenance.js'),
  ]);
  const { loaded } = await backendAndModel(args, str(args, 'model')!);
  const { model } = loaded;
  let patcher: InstanceType<typeof Patcher> | undefined;
  try {
    const ds = await datasetFor(loaded, data);
    const cfg = model.cfg;
    if (finest === 'neurons' && cfg.attnOnly) throw new CircuitryError('--finest neurons: the model is attention-only (it has no MLPs)');
    const graph = graphForModel(cfg);
    patcher = new Patcher(model, graph, ds, { metric, direction, ablation, batchSize });
    console.log(`model: ${loaded.name}; dataset: ${describeData(ds)}; ${metric}: clean ${fmt(patcher.cleanMetric)}, corrupted ${fmt(patcher.corruptedMetric)}; ${direction}`);
    const progress = createProgress('search');
    const t0 = performance.now();
    let r;
    try {
      r = hierarchicalSearch(patcher, { floor, unit, finest, maxKeep, onProgress: progress.update });
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const level of r.levels) {
      const kept = level.components.filter((c) => c.kept);
      console.log(`${level.level.padEnd(10)} ${String(level.components.length).padStart(6)} patched, ${String(kept.length).padStart(4)} kept: ${kept.slice(0, 8).map((c) => `${c.name} ${fmt(c.effect)}`).join(', ')}${kept.length > 8 ? ', …' : ''}`);
    }
    console.log(`${r.evaluated} of the full sweep's ${r.fullSweep.components} components (${(100 * r.patchedFraction).toFixed(1)}%), ${r.forwardPasses + r.cachePasses} of ${r.fullSweep.forwardPasses + r.fullSweep.cachePasses} forward passes (${(100 * r.passFraction).toFixed(1)}%), ${seconds.toFixed(1)} s`);
    const file = {
      ...provenance({ model: loaded, dataset: ds, timings: { search: seconds } }),
      direction,
      metric,
      ablation,
      floor,
      unit,
      finest,
      max_keep: maxKeep ?? null,
      clean: r.clean,
      corrupted: r.corrupted,
      levels: r.levels.map((l) => ({ level: l.level, forward_passes: l.forwardPasses, cache_passes: l.cachePasses, components: l.components })),
      kept: r.kept,
      evaluated: r.evaluated,
      forward_passes: r.forwardPasses,
      cache_passes: r.cachePasses,
      full_sweep: { components: r.fullSweep.components, forward_passes: r.fullSweep.forwardPasses, cache_passes: r.fullSweep.cachePasses },
      pass_fraction: r.passFraction,
      patched_fraction: r.patchedFraction,
    };
    writeFileAtomic(out, jsonText(file));
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    patcher?.dispose();
    model.dispose();
  }
}
