import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import { dataOptions } from '../options.js';
import { fmt, jsonText, num, oneOf, outFile, str } from '../flags.js';

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
      y
        .option('model', { type: 'string', demandOption: true, describe: 'a zoo name, a local HuggingFace folder or a hub id' })
        .option('site', { type: 'string', demandOption: true, describe: 'aL.hH (head z), mL (MLP out), resid_pre:L, attn_out:L, …, each optionally @position (e.g. a1.h2@5)' })
        .option('metric', { type: 'string', default: 'logit-diff', describe: 'logit-diff | prob | logprob | kl' })
        .option('radius', { type: 'number', describe: 'norm bound (default: the norm of the mean clean − corrupted difference at the site)' })
        .option('steps', { type: 'number', default: 150, describe: 'at most this many ascent steps' })
        .option('optimizer', { type: 'string', default: 'adam', describe: 'adam | sgd (plain normalised projected steps)' })
        .option('lr', { type: 'number', describe: 'initial step size as a fraction of the radius (default 0.05 adam, 0.5 sgd)' })
        .option('tolerance', { type: 'number', default: 1e-4, describe: 'stop when 20 steps improve the metric by less than this × |clean − corrupted|' })
        .option('init', { type: 'string', default: 'random', describe: 'random (seeded direction of norm r) | difference (the clean − corrupted difference)' })
        .option('init-seed', { type: 'number', default: 0, describe: 'seed of the random start' })
        .option('batch-size', { type: 'number', describe: 'prompts per pass (default: all, at most 64)' })
        .option('out', { type: 'string', demandOption: true, describe: 'the JSON file to write' }),
    ).example('circuitry direction --model planted-and --task both-colors --n 16 --site m0@2 --out m0.json', 'the best direction at m0, position 2'),
  run: (args) => runDirection(args),
};

async function runDirection(args: Record<string, unknown>): Promise<number> {
  const { parseMetricName } = await import('../../metrics/index.js');
  const metric = parseMetricName(str(args, 'metric') ?? 'logit-diff', '--metric');
  if (metric === 'accuracy') throw new CircuitryError('--metric: accuracy has zero gradient everywhere; use logit-diff, prob, logprob or kl');
  const radius = num(args, 'radius', 'a positive number', (n) => n > 0);
  const steps = num(args, 'steps', 'a positive integer', (n) => Number.isInteger(n) && n >= 1);
  const lr = num(args, 'lr', 'a positive number', (n) => n > 0);
  const tolerance = num(args, 'tolerance', 'a non-negative number', (n) => n >= 0);
  const seed = num(args, 'init-seed', 'an integer', (n) => Number.isSafeInteger(n));
  const optimizer = oneOf(args, 'optimizer', ['adam', 'sgd'] as const, 'adam');
  const init = oneOf(args, 'init', ['random', 'difference'] as const, 'random');
  const batchSize = num(args, 'batch-size', 'a positive integer', (n) => Number.isInteger(n) && n >= 1);
  const n = num(args, 'n', 'a positive integer', (x) => Number.isInteger(x) && x >= 1) ?? 64;
  const taskSeed = num(args, 'seed', 'an integer', (x) => Number.isSafeInteger(x)) ?? 0;
  const siteText = str(args, 'site');
  if (!siteText) throw new CircuitryError('--site: give the site, e.g. a1.h2@5');
  const out = outFile(args)!;
  const modelName = str(args, 'model');
  if (!modelName) throw new CircuitryError('--model: give a zoo name, a model folder or a hub id');

  const [{ initBackend }, { loadModel }, { resolveDataset }, { datasetHash }, { graphForModel }, { Patcher }, { optimalDirection, parseDirectionSite }, { createProgress }, { writeFileAtomic }, { VERSION }] = await Promise.all([
    import('../../backend/index.js'),
    import('../../model/load.js'),
    import('../../discovery/data.js'),
    import('../../tasks/index.js'),
    import('../../graph/graph.js'),
    import('../../patching/patcher.js'),
    import('../../interventions/optimal-direction.js'),
    import('../../patching/progress.js'),
    import('../../graph/circuit-json.js'),
    import('../../version.js'),
  ]);
  const backend = await initBackend(str(args, 'backend'));
  console.log(`backend: ${backend}`);
  const loaded = await loadModel(modelName, { log: (m) => console.error(m) });
  const { model } = loaded;
  let patcher: InstanceType<typeof Patcher> | undefined;
  try {
    const datasetPath = str(args, 'dataset');
    const task = str(args, 'task');
    const ds = resolveDataset(loaded, datasetPath ? { dataset: datasetPath } : { task: { name: task!, n, seed: taskSeed } });
    const cfg = model.cfg;
    const site = parseDirectionSite(siteText, cfg, ds.seqLen, '--site');
    const graph = graphForModel(cfg);
    patcher = new Patcher(model, graph, ds, { metric, direction: 'denoise', batchSize });
    console.log(`model: ${loaded.name}; dataset: ${ds.source} (${ds.clean.length} pairs of ${ds.seqLen} tokens); ${metric}: clean ${fmt(patcher.cleanMetric)}, corrupted ${fmt(patcher.corruptedMetric)}`);
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
      tool: { name: 'circuitry', version: VERSION },
      created: new Date().toISOString(),
      backend,
      model: { name: loaded.name, hash: loaded.source.hash, source: loaded.source.kind },
      dataset: { name: ds.name, source: ds.source, hash: datasetHash(ds), n_examples: ds.clean.length, seq_len: ds.seqLen },
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
      timings: { direction: seconds },
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
