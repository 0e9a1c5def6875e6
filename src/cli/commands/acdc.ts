import type { Command } from './types.js';
import { dataOptions, metricOption, modelOption } from '../options.js';

export const acdcCommand: Command = {
  command: 'acdc',
  describe: 'plain ACDC over every edge (Conmy et al. 2023): remove edges whose removal changes the output by less than τ',
  builder: (y) =>
    metricOption(dataOptions(modelOption(y)), 'kl')
      .option('threshold', { type: 'number', demandOption: true, describe: 'τ: an edge is removed if the faith measure grows by less than this' })
      .option('order', { type: 'string', default: 'acdc', describe: 'visiting order: acdc (the paper) | auto-circuit' })
      .option('faith', { type: 'string', describe: 'kl | diff | abs-diff (default: kl for --metric kl, else diff: M(clean) − M(current))' })
      .option('batch-size', { type: 'number', default: 32 })
      .option('checkpoint', { type: 'string', describe: 'checkpoint file (default: beside --out)' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue an interrupted run from its checkpoint' })
      .option('fresh', { type: 'boolean', default: false, describe: 'discard the checkpoint of an interrupted run and start over' })
      .option('out', { type: 'string', demandOption: true, describe: 'circuit JSON to write (in_graph marks the kept edges)' }),
  run: async (args) => (await import('../discover-impl.js')).acdcCli(args as never),
};
