import type { Command } from './types.js';
import { dataOptions, metricOption, modelOption, numberFlag, readData, readWorkers, workersOption } from '../options.js';
import { redisOptions, withShardRunner } from '../shard-runner.js';
import type { ShardRunner } from '../../scale/index.js';
import { oneOf, outFile, readNumber, str } from '../flags.js';
import { CircuitryError } from '../../errors.js';

/** `circuitry acdc`: plain ACDC over every edge; the work is discovery/acdc-circuit.ts acdcCircuit. */
export const acdcCommand: Command = {
  command: 'acdc',
  describe: 'plain ACDC over every edge (Conmy et al. 2023): remove edges whose removal changes the output by less than τ',
  builder: (y) =>
    redisOptions(workersOption(metricOption(dataOptions(modelOption(y)), 'kl')), 'the decisions\' passes')
      .option('threshold', { ...numberFlag('τ ≥ 0: an edge is removed if the faith measure grows by less than this'), demandOption: true })
      .option('order', { type: 'string', default: 'acdc', describe: 'visiting order: acdc (the paper) | auto-circuit' })
      .option('faith', { type: 'string', describe: 'kl | diff | abs-diff (default: kl for --metric kl, else diff: M(clean) − M(current))' })
      .option('batch-size', numberFlag('prompts per forward pass', 32))
      .option('checkpoint', { type: 'string', describe: 'checkpoint file (default: beside --out)' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue an interrupted run from its checkpoint' })
      .option('fresh', { type: 'boolean', default: false, describe: 'discard the checkpoint of an interrupted run and start over' })
      .option('stop-after', numberFlag('stop after deciding this many more edges (at the end of that node), leaving the checkpoint as Ctrl-C does (exit 0); continue with --resume'))
      .option('out', { type: 'string', demandOption: true, describe: 'circuit JSON to write (in_graph marks the kept edges)' })
      .example('circuitry acdc --model mini-gpt2 --task ioi -n 16 --threshold 0.01 --metric kl --out acdc.json', 'ACDC on 16 IOI pairs'),
  run: (args) => withShardRunner(args, readWorkers(args), (runner) => runAcdcCommand(args, runner)),
};

async function runAcdcCommand(args: Record<string, unknown>, runner: ShardRunner | undefined): Promise<number> {
  // outputs and numbers first: they need no library, so a mistake is reported at once
  const out = outFile(args, true, 'out', 'the circuit JSON file to write')!;
  const checkpoint = outFile(args, false, 'checkpoint', 'the checkpoint file') ?? `${out}.checkpoint.json`;
  const faith = str(args, 'faith') === undefined ? undefined : oneOf(args, 'faith', ['kl', 'diff', 'abs-diff'] as const, 'kl');
  const tau = readNumber(args, 'threshold', 'non-negative');
  if (tau === undefined) throw new CircuitryError('--threshold: give τ');
  const batchSize = readNumber(args, 'batch-size', 'count');
  const stopAfter = readNumber(args, 'stop-after', 'count');
  const workers = readWorkers(args);
  const data = (await readData(args))!;
  if (str(args, 'checkpoint') === undefined) (await import('../../io/files.js')).checkOutputPath(checkpoint, '--out (its checkpoint)');
  const [{ parseMetricName }, { parseAcdcOrder }] = await Promise.all([import('../../metrics/index.js'), import('../../discovery/order.js')]);
  const metric = parseMetricName(str(args, 'metric') ?? 'kl', '--metric');
  const order = parseAcdcOrder(str(args, 'order') ?? 'acdc');

  const [{ backendAndModel, datasetFor, describeData }, { acdcCircuit }, { writeCircuitFile }, { interruptSignal, stageProgress }, { checkCheckpoint }] = await Promise.all([
    import('../load.js'),
    import('../../discovery/acdc-circuit.js'),
    import('../../graph/circuit-json.js'),
    import('../discover-impl.js'),
    import('../../discovery/checkpoint.js'),
  ]);
  // before the model loads: an existing checkpoint needs --resume or --fresh
  checkCheckpoint(checkpoint, { resume: args.resume === true, fresh: args.fresh === true, command: 'the same command with' });
  const { loaded } = await backendAndModel(args, str(args, 'model')!, { shareWeights: workers !== 1 });
  const interrupt = interruptSignal();
  const progress = stageProgress();
  let decided = 0;
  const stopRequested = () => stopAfter !== undefined && decided >= stopAfter;
  try {
    const ds = await datasetFor(loaded, data);
    console.log(`acdc: model ${loaded.name}; dataset ${describeData(ds)}; τ ${tau}, ${metric}, order ${order}`);
    const r = await acdcCircuit(loaded, ds, {
      metric, tau, order, ...(faith ? { faith } : {}), ...(batchSize !== undefined ? { batchSize } : {}),
      checkpoint, resume: args.resume === true, signal: interrupt.signal, shouldStop: stopRequested,
      onProgress: (done, total) => {
        decided++; // edges decided by this run (a resumed run counts from its checkpoint)
        progress.onProgress('acdc', done, total);
      },
      data,
      workers,
      runner,
      onPool: progress.setWorkers,
    });
    progress.stop();
    if ((!r.complete || !r.file) && stopRequested() && !interrupt.signal.aborted) {
      console.log(`stopped after ${decided} edges (--stop-after ${stopAfter}); the checkpoint is ${checkpoint}\ncontinue with the same command and --resume`);
      return 0;
    }
    if (!r.complete || !r.file) {
      console.error(`stopped; the checkpoint is ${checkpoint}\nresume with the same command and --resume`);
      return 130;
    }
    writeCircuitFile(out, r.file);
    console.log(`kept ${r.kept} of ${r.nEdges} edges in ${r.forwardPasses} forward passes (${r.seconds.toFixed(1)} s); wrote ${out}`);
    return 0;
  } finally {
    progress.stop();
    interrupt.dispose();
    loaded.model.dispose();
  }
}
