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
      .option('out', { type: 'string', demandOption: true, describe: 'circuit JSON to write (in_graph marks the kept edges)' }),
  run: async (args) => (await import('../discover-impl.js')).acdcCli(args as never),
};

export const discoverCommand: Command = {
  command: 'discover <pipeline>',
  describe: 'run a discovery pipeline (screen → verify → prune → evaluate) from a YAML file',
  builder: (y) =>
    y
      .positional('pipeline', { type: 'string', describe: 'pipeline YAML (see pipelines/)' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue an interrupted run from its checkpoint' })
      .option('report', { type: 'boolean', default: true, describe: 'also write the HTML report (--no-report: the circuit JSON only)' }),
  run: async (args) => (await import('../discover-impl.js')).discoverCli(args as never),
};

export const evaluateCommand: Command = {
  command: 'evaluate <circuit>',
  describe: "measure a circuit's faithfulness (metric vs the full and empty model, CPR/CMD curve) and, with a ground truth, ROC AUC, precision and recall",
  builder: (y) =>
    dataOptions(y.positional('circuit', { type: 'string', describe: 'circuit JSON' }), false)
      .option('model', { type: 'string', describe: 'model (default: the one named in the circuit file)' })
      .option('metric', { type: 'string', default: 'logit-diff' })
      .option('ground-truth', { type: 'string', describe: 'circuit JSON or a text file of edge names (one per line) to compare with' })
      .option('batch-size', { type: 'number', default: 32 })
      .option('json', { type: 'boolean', default: false }),
  run: async (args) => (await import('../discover-impl.js')).evaluateCli(args as never),
};
