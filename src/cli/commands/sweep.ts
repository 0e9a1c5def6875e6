import type { Command } from './types.js';

/** `circuitry sweep SWEEP.yaml`: every run × grid combination, locally or on BullMQ workers. */
export const sweepCommand: Command = {
  command: 'sweep <sweep>',
  describe: 'run every pipeline of a sweep file (runs × grid), locally or as jobs for `circuitry worker`s; writes the circuits, a CSV table and a comparison page',
  builder: (y) =>
    y
      .positional('sweep', { type: 'string', describe: 'sweep YAML: runs: (pipeline files or inline configs) and grid: (dotted keys → lists)' })
      .option('out-dir', { type: 'string', describe: 'folder for the results (default sweeps/<sweep file name>)' })
      .option('redis', { type: 'string', describe: 'redis://[user:password@]host:port[/db] or rediss://… : run the pipelines as jobs on `circuitry worker` processes' })
      .option('queue', { type: 'string', describe: 'BullMQ queue name (default circuitry)' })
      .option('workers', { type: 'string', describe: 'local worker processes without --redis (default 1: in this process)' })
      .option('resume', { type: 'boolean', default: false, describe: 'keep the results already written (and, with --redis, jobs already queued or finished)' })
      .option('report', { type: 'boolean', default: true, describe: 'also write an HTML report per pipeline (--no-report: circuits only)' })
      .example('circuitry sweep docs/examples/sweep.yaml --out-dir sweeps/example', 'two thresholds of the planted induction pipeline, a table, a CSV and a compare page')
      .example('circuitry sweep docs/examples/sweep.yaml --redis redis://127.0.0.1:6379', "the same as jobs for 'circuitry worker' processes"),
  run: async (args) => (await import('../sweep-impl.js')).sweepCli(args as never),
};
