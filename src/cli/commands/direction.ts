import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import { dataOptions, modelOption, numberFlag, readData } from '../options.js';
import { fmt, jsonText, oneOf, outFile, readNumber, str } from '../flags.js';

/**
 * `circuitry direction`: the optimal patch direction at a site — the vector of bounded norm
 * that, added to the corrupted run there, moves the metric furthest toward the clean run —
 * with its recovery and its cosine similarity to the clean − corrupted difference.
 */
export const directionCommand: Command = {
  command: 'direction',
  describe: 'optimal patch direction: the bounded additive vector at a site that best restores the metric on the corrupted run (projected gradient ascent)',
  builder: (y) =>
    dataOptions(
      modelOption(y)
        .option('site', { type: 'string', demandOption: true, describe: 'aL.hH (head z), mL (MLP out), resid_pre:L, attn_out:L, …, each optionally @position (e.g. a1.h2@5)' })
        .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | kl' })
        .option('radius', numberFlag('norm bound (default: the norm of the mean clean − corrupted difference at the site)'))
        .option('steps', numberFlag('at most this many ascent steps', 150))
        .option('optimizer', { type: 'string', default: 'adam', describe: 'adam | sgd (plain normalised projected steps)' })
        .option('lr', numberFlag('initial step size as a fraction of the radius (default 0.05 adam, 0.5 sgd)'))
        .option('tolerance', numberFlag('stop when 20 steps improve the metric by less than this × |clean − corrupted|', 1e-4))
        .option('init', { type: 'string', default: 'random', describe: 'random (seeded direction of norm r) | difference (the clean − corrupted difference)' })
        .option('init-seed', numberFlag('seed of the random start', 0))
        .option('batch-size', numberFlag('prompts per pass (default: all, at most 64)'))
        .option('out', { type: 'string', demandOption: true, describe: 'the JSON file to write' }),
    ).example('circuitry direction --model planted-and --task both-colors -n 16 --site m0@2 --out m0.json', 'the best direction at m0, position 2'),
  run: (args) => runDirection(args),
};

async function runDirection(args: Record<string, unknown>): Promise<number> {
  const out = outFile(args)!;
  const radius = readNumber(args, 'radius', 'positive');
  const steps = readNumber(args, 'steps', 'count');
  const lr = readNumber(args, 'lr', 'positive');
  const tolerance = readNumber(args, 'tolerance', 'non-negative');
  const seed = readNumber(args, 'init-seed', 'integer');
  const optimizer = oneOf(args, 'optimizer', ['adam', 'sgd'] as const, 'adam');
  const init = oneOf(args, 'init', ['random', 'difference'] as const, 'random');
  const batchSize = readNumber(args, 'batch-size', 'count');
  const siteText = str(args, 'site');
  if (!siteText) throw new CircuitryError('--site: give the site, e.g. a1.h2@5');
  const data = (await readData(args))!;
  const { parseMetricName } = await import('../../metrics/index.js');
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');
  if (metric === 'accuracy') throw new CircuitryError('--metric: accuracy has zero gradient everywhere; use logit-diff, prob, logprob or kl');

  const [{ backendAndModel, datasetFor, describeData }, { graphForModel }, { Patcher }, { optimalDirection, parseDirectionSite }, { createProgress }, { writeFileAtomic }, { provenance }] = await Promise.all([
    import('../load.js'),
    import('../../graph/graph.js'),
    import('../../patching/patcher.js'),
    import('../../interventions/optimal-direction.js'),
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
    const site = parseDirectionSite(siteText, cfg, ds.seqLen, '--site');
    const graph = graphForModel(cfg);
    patcher = new Patcher(model, graph, ds, { metric, direction: 'denoise', batchSize });
    console.log(`model: ${loaded.name}; dataset: ${describeData(ds)}; ${metric}: clean ${fmt(patcher.cleanMetric)}, corrupted ${fmt(patcher.corruptedMetric)}`);
    const progress = createProgress(`direction ${site.name}`);
    const t0 = performance.now();
    let r;
    try {
      r = optimalDirection(patcher, site, { radius, steps, learningRate: lr, tolerance, seed, optimizer, init, onProgress: progress.update });
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(`site ${site.name} (${site.hook}): ‖v‖ ${fmt(r.norm)} ≤ ${fmt(r.radius)}; ${metric} ${fmt(r.value)}, recovery ${fmt(r.recovery)}`);
    console.log(`  patching in the clean activation: recovery ${fmt(r.patch.recovery)}; adding the mean clean − corrupted difference: ${fmt(r.difference.recovery)}`);
    console.log(`  cosine(v, clean − corrupted) ${fmt(r.cosine)}; ${r.steps} steps (${r.optimizer}${r.converged ? ', converged' : ', step limit'}), ${seconds.toFixed(1)} s`);
    const file = {
      ...provenance({ model: loaded, dataset: ds, timings: { direction: seconds } }),
      site: { name: site.name, hook: site.hook, select: site.select },
      metric,
      clean: r.clean,
      corrupted: r.corrupted,
      radius: r.radius,
      norm: r.norm,
      value: r.value,
      recovery: r.recovery,
      cosine: r.cosine,
      patch: r.patch,
      difference: r.difference,
      optimizer: r.optimizer,
      seed: r.seed,
      steps: r.steps,
      converged: r.converged,
      history: r.history,
      forward_passes: r.forwardPasses,
      backward_passes: r.backwardPasses,
      shape: r.shape,
      vector: r.vector,
    };
    writeFileAtomic(out, jsonText(file));
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    patcher?.dispose();
    model.dispose();
  }
}
