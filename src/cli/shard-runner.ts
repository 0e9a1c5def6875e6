import type { Argv } from 'yargs';
import { CircuitryError } from '../errors.js';
import type { ShardRunner, WorkerCount } from '../scale/index.js';
import { str } from './flags.js';

/**
 * --redis URL [--queue NAME] for every command whose pooled work (mask evaluations, attribution,
 * tracing) can run as shard jobs on `circuitry worker` processes instead of local threads.
 */
export function redisOptions<T>(y: Argv<T>, what = 'the pooled work (mask evaluations, attribution, tracing)') {
  return y
    .option('redis', { type: 'string', requiresArg: true, describe: `redis://[user:password@]host:port[/db] or rediss://… : run ${what} as shard jobs for \`circuitry worker\` processes (--workers N: N shards; default one per listening worker)` })
    .option('queue', { type: 'string', requiresArg: true, describe: 'BullMQ queue name, with --redis (default circuitry; shard jobs go to <queue>-shards)' });
}

/**
 * The shard runner --redis asks for, connected (undefined without --redis). The URL and the
 * server are checked here, before any model loads, so a bad one fails in seconds. Shards:
 * --workers N, else `fallback` (a pipeline file's workers:), else one per listening worker.
 */
async function openShardRunner(args: Record<string, unknown>, workers: WorkerCount, fallback?: WorkerCount): Promise<ShardRunner | undefined> {
  const redis = str(args, 'redis');
  const queue = str(args, 'queue');
  if (queue !== undefined && redis === undefined) throw new CircuitryError('--queue: only with --redis');
  if (redis === undefined) return undefined;
  const [{ parseRedisUrl }, { RedisShardRunner }, { DEFAULT_QUEUE }] = await Promise.all([import('../scale/redis.js'), import('../scale/redis-runner.js'), import('../sweep/queue.js')]);
  const target = parseRedisUrl(redis);
  return RedisShardRunner.connect(target, { queue: queue ?? DEFAULT_QUEUE, shards: workers !== 'auto' ? workers : fallback === 'auto' ? undefined : fallback, log: (m) => console.error(m) });
}

/** Runs `fn` with the runner --redis asks for (or none), and closes it however `fn` ends. */
export async function withShardRunner<T>(args: Record<string, unknown>, workers: WorkerCount, fn: (runner: ShardRunner | undefined) => Promise<T>, fallback?: WorkerCount): Promise<T> {
  const runner = await openShardRunner(args, workers, fallback);
  try {
    return await fn(runner);
  } finally {
    await runner?.destroy();
  }
}
