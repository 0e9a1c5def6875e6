import type { Command } from './types.js';

export const discoverCommand: Command = {
  command: 'discover <pipeline>',
  describe: 'run a discovery pipeline (screen → verify → prune → evaluate) from a YAML file',
  builder: (y) =>
    y
      .positional('pipeline', { type: 'string', describe: 'pipeline YAML (see pipelines/)' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue an interrupted run from its checkpoint' })
      .option('report', { type: 'boolean', default: true, describe: 'also write the HTML report (--no-report: the circuit JSON only)' })
      .example('circuitry discover pipelines/planted-induction.yaml', 'screen → verify → prune → evaluate; writes the circuit and its report'),
  run: async (args) => (await import('../discover-impl.js')).discoverCli(args as never),
};
