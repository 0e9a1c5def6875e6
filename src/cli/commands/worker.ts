import type { Command } from './types.js';

/** `circuitry worker --redis URL`: runs sweep jobs and discover's shard tasks from the queues; any number, on any machine. */
export const workerCommand: Command = {
  command: 'worker',
  describe: 'take sweep jobs and `discover --redis` shard tasks from Redis queues and run them (start one or more on each machine)',
  builder: (y) =>
    y
      .option('redis', { type: 'string', demandOption: true, describe: 'redis://[user:password@]host:port[/db] or rediss://…' })
      .option('concurrency', { type: 'string', default: '1', describe: 'pipelines run at once (one child process each), and shard tasks at once (one worker thread each)' })
      .option('queue', { type: 'string', describe: 'BullMQ queue name (default circuitry; shard tasks come from <queue>-shards)' })
      .option('lock-seconds', { type: 'number', default: 30, describe: "a job whose worker stops renewing its lock this long goes to another worker" })
      .example('circuitry worker --redis redis://127.0.0.1:6379 --concurrency 2', 'take sweep jobs from Redis, two pipelines at a time'),
  run: async (args) => (await import('../sweep-impl.js')).workerCli(args as never),
};
