import type { Command } from './types.js';
import { dataOptions, numberFlag, readData, readWorkers, workersOption } from '../options.js';
import { readNumber } from '../flags.js';
import { redisOptions } from '../shard-runner.js';

export const evaluateCommand: Command = {
  command: 'evaluate <circuit>',
  describe:
    "measure a circuit's faithfulness (metric vs the full and empty model, CPR/CMD curve) and, with a ground truth, ROC AUC, precision and recall; " +
    'by default on the dataset, metric and batch size the circuit was discovered with',
  builder: (y) =>
    redisOptions(workersOption(dataOptions(y.positional('circuit', { type: 'string', describe: 'circuit JSON' }))), 'the evaluation')
      .option('model', { type: 'string', describe: 'model (default: the one named in the circuit file)' })
      .option('metric', { type: 'string', describe: "logit-diff | prob | logprob | accuracy | kl (default: the circuit's, else logit-diff)" })
      .option('ground-truth', { type: 'string', describe: 'circuit JSON or a text file of edge names (one per line) to compare with' })
      .option('batch-size', numberFlag("prompts per pass (default: the circuit's, else 32)"))
      .option('json', { type: 'boolean', default: false })
      .example('$0 evaluate graphs/mini-gpt2-ioi.json', "on the circuit's own dataset, as discover measured it")
      .example('$0 evaluate graphs/mini-gpt2-ioi.json --task ioi -n 128 --seed 7', 'on other data'),
  run: async (args) => {
    // the shared checks first; the data defaults to what the circuit's meta records
    const task = (await readData(args, false))?.task;
    const batchSize = readNumber(args, 'batch-size', 'count');
    const workers = readWorkers(args);
    return (await import('../discover-impl.js')).evaluateCli({ ...(args as Record<string, unknown>), ...(task ? { n: task.n, seed: task.seed } : {}), batchSize, workers } as never);
  },
};
