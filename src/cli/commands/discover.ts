import type { Command } from './types.js';
import { workersOption } from '../options.js';
import { redisOptions } from '../shard-runner.js';

export const discoverCommand: Command = {
  command: 'discover <pipeline>',
  describe: 'run a discovery pipeline (screen → verify → prune → evaluate) from a YAML file',
  builder: (y) =>
    redisOptions(workersOption(y), 'the pooled stages')
      .positional('pipeline', { type: 'string', describe: 'pipeline YAML (see pipelines/)' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue an interrupted run from its checkpoint, skipping the stages it finished' })
      .option('fresh', { type: 'boolean', default: false, describe: 'discard the checkpoint of an interrupted run and start over' })
      .option('report', { type: 'boolean', default: true, describe: 'also write the HTML report (--no-report: the circuit JSON only)' })
      .example('$0 discover pipelines/planted-induction.yaml', 'screen, verify, prune and evaluate; Ctrl-C leaves a checkpoint')
      .example('$0 discover pipelines/planted-induction.yaml --workers 1', 'the same circuit, computed in this process (no worker threads)')
      .example('$0 discover pipelines/planted-induction.yaml --redis redis://queue-host:6379', "the same circuit, its verify, ACDC and evaluation shards run by 'circuitry worker' processes")
      .example('$0 discover pipelines/planted-induction.yaml --fresh', "start over, discarding an interrupted run's checkpoint (--resume continues it)"),
  run: async (args) => {
    const { readWorkers } = await import('../options.js');
    const workers = readWorkers(args);
    const { discoverCli } = await import('../discover-impl.js');
    return discoverCli({ ...(args as unknown as Parameters<typeof discoverCli>[0]), workers });
  },
};
