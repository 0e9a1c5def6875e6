import { hostname } from 'node:os';
import { UnrecoverableError, Worker } from 'bullmq';
import { checkPayload, RejectedJobError, type JobResult } from './job.js';
import { ProcessPool } from './pool.js';
import { DEFAULT_QUEUE } from './queue.js';
import { checkRedis, connect, parseRedisUrl } from './redis.js';
import { checkWorkerCount } from './sweep.js';
import { VERSION } from '../version.js';
import { CircuitryError } from '../errors.js';
import { ShardWorker } from '../scale/shard-worker.js';

export interface WorkerOptions {
  readonly redis: string;
  readonly concurrency?: number | string;
  readonly queue?: string;
  /**
   * BullMQ's lock on a running job lasts this long and is renewed at half of it; a job whose
   * worker died is handed to another worker one or two stalled checks (same interval) later.
   */
  readonly lockSeconds?: number;
  readonly backend?: string;
  readonly log?: (message: string) => void;
  /** Resolves when the worker should stop (default: SIGINT or SIGTERM). */
  readonly until?: Promise<void>;
}

/**
 * `circuitry worker`: takes sweep jobs from the queue and runs each in a child process (so the
 * event loop that renews BullMQ's locks never blocks on tensor work), returning the circuit
 * JSON as the job's return value; and shard tasks of `discover --redis` from `<queue>-shards`,
 * in worker threads (scale/shard-worker.ts). Writes no files: the coordinator does.
 */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const concurrency = checkWorkerCount(opts.concurrency ?? 1, '--concurrency');
  const lockSeconds = opts.lockSeconds ?? 30;
  if (!(typeof lockSeconds === 'number' && lockSeconds >= 1)) throw new CircuitryError(`--lock-seconds: expected a number ≥ 1, got ${String(lockSeconds)}`);
  const lockMs = Math.round(1000 * lockSeconds);
  const target = parseRedisUrl(opts.redis);
  await checkRedis(target);
  const pool = new ProcessPool(concurrency, opts.backend);
  const queueName = opts.queue ?? DEFAULT_QUEUE;
  const client = connect(target);
  const worker = new Worker(
    queueName,
    async (job): Promise<JobResult> => {
      const label = `job ${job.id}`;
      let payload;
      try {
        payload = checkPayload(job.data, label).payload;
      } catch (e) {
        log(`refused ${(e as Error).message}`);
        throw new UnrecoverableError((e as Error).message);
      }
      log(`${label} (${payload.name}): started, attempt ${job.attemptsMade + 1}`);
      try {
        const result = await pool.run(payload);
        log(`${label} (${payload.name}): done in ${result.seconds.total.toFixed(1)} s`);
        return result;
      } catch (e) {
        log(`${label} (${payload.name}): failed: ${(e as Error).message}`);
        if (e instanceof RejectedJobError) throw new UnrecoverableError(e.message);
        throw e;
      }
    },
    { connection: client, concurrency, lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 2, name: `${hostname()}:${process.pid}` },
  );
  const shards = new ShardWorker({ target, queue: queueName, concurrency, lockMs, log });
  let lastError = '';
  worker.on('error', (e) => {
    if (e.message !== lastError) log(`worker: ${e.message}`);
    lastError = e.message;
  });
  log(`circuitry ${VERSION} worker ${hostname()}:${process.pid}: waiting for jobs on queues '${queueName}' and '${shards.queueName}' at ${target.label} (concurrency ${concurrency}, backend ${opts.backend ?? 'auto'})`);
  const until =
    opts.until ??
    new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  await until;
  log('stopping: finishing the running jobs (send the signal again to quit now)');
  const quit = () => process.exit(130);
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  try {
    await Promise.all([worker.close(), shards.close()]);
    await pool.close();
  } finally {
    client.disconnect();
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
  }
}
