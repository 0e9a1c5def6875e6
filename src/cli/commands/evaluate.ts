import type { Command } from './types.js';
import { dataOptions, numberFlag, readData } from '../options.js';
import { readNumber } from '../flags.js';

export const evaluateCommand: Command = {
  command: 'evaluate <circuit>',
  describe: "measure a circuit's faithfulness (metric vs the full and empty model, CPR/CMD curve) and, with a ground truth, ROC AUC, precision and recall",
  builder: (y) =>
    dataOptions(y.positional('circuit', { type: 'string', describe: 'circuit JSON' }))
      .option('model', { type: 'string', describe: 'model (default: the one named in the circuit file)' })
      .option('metric', { type: 'string', default: 'logit-diff' })
      .option('ground-truth', { type: 'string', describe: 'circuit JSON or a text file of edge names (one per line) to compare with' })
      .option('batch-size', numberFlag('prompts per forward pass', 32))
      .option('json', { type: 'boolean', default: false })
      .example('circuitry evaluate graphs/mini-gpt2-ioi.json', "on the circuit's own dataset (recorded in its meta)"),
  run: async (args) => {
    // the shared checks; the data defaults to what the circuit's meta records
    const data = await readData(args, false);
    const batchSize = readNumber(args, 'batch-size', 'count');
    const task = data?.task;
    return (await import('../discover-impl.js')).evaluateCli({ ...(args as Record<string, unknown>), ...(task ? { n: task.n, seed: task.seed } : {}), batchSize } as never);
  },
};
