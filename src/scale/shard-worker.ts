import { hostname } from 'node:os';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { WorkerPool } from './pool.js';
import type { WorkerTask } from './protocol.js';
import { connect, type RedisTarget } from './redis.js';
import { shardQueueName } from './redis-runner.js';
import { decodeTask, encodeReply } from './wire.js';

/** Shards a worker thread keeps built (their cached runs); the least recently used one goes first. */
const SHARDS_PER_THREAD = 8;

export interface ShardWorkerOptions {
  readonly target: RedisTarget;
  /** The sweep queue's name; shard tasks come from `<queue>-shards`. */
  readonly queue: string;
  /** Tasks run at once, one worker thread each. */
  readonly concurrency: number;
  /** BullMQ's lock on a running job (renewed at half of it); a dead worker's job is retried after it. */
  readonly lockMs: number;
  readonly log: (message: string) => void;
}

/**
 * The worker side of `discover --redis`: takes shard tasks from `<queue>-shards` and runs them
 * with the pool's own task executor (worker.ts) in worker threads, so that the event loop which
 * renews BullMQ's locks never blocks on tensor work. A task goes to the thread chosen by its
 * shard's key, which caches the shard (its prompts' runs); a thread that does not hold the
 * shard builds it from the task. Replies go back as the job's return value (wire.ts JSON).
 */
export class ShardWorker {
  private readonly pool: WorkerPool;
  private readonly worker: Worker;
  private readonly client: Redis;
  /** Per thread, the shard keys it holds, least recently used first. */
  private readonly held: string[][];
  private next = 0;

  constructor(private readonly opts: ShardWorkerOptions) {
    this.pool = new WorkerPool(opts.concurrency, { log: opts.log });
    this.held = Array.from({ length: opts.concurrency }, () => []);
    this.client = connect(opts.target);
    this.worker = new Worker(shardQueueName(opts.queue), async (job) => this.process(job.id ?? '?', job.data, job.attemptsMade), {
      connection: this.client,
      concurrency: opts.concurrency,
      lockDuration: opts.lockMs,
      stalledInterval: opts.lockMs,
      maxStalledCount: 2,
      name: `${hostname()}:${process.pid}:shards`,
    });
    let lastError = '';
    this.worker.on('error', (e) => {
      if (e.message !== lastError) opts.log(`shard worker: ${e.message}`);
      lastError = e.message;
    });
  }

  get queueName(): string {
    return shardQueueName(this.opts.queue);
  }

  private async process(id: string, data: unknown, attemptsMade: number): Promise<unknown> {
    const label = `shard job ${id}`;
    let task: WorkerTask;
    try {
      task = decodeTask(data, label);
    } catch (e) {
      this.opts.log(`refused ${(e as Error).message}`);
      throw new UnrecoverableError((e as Error).message);
    }
    const key = 'shard' in task && typeof task.shard === 'object' ? task.shard.key : undefined;
    const thread = key === undefined ? this.next++ % this.pool.size : threadOf(key, this.pool.size);
    if (key !== undefined) this.hold(thread, key, label, attemptsMade);
    await testDelay();
    try {
      const reply = await this.pool.reply(thread, task, label);
      if (!reply.ok) this.opts.log(`${label} (${task.kind}): ${reply.name}: ${reply.message}`);
      return encodeReply(reply);
    } catch (e) {
      // the thread died twice: BullMQ retries the task (attempts), maybe on another machine
      this.opts.log(`${label} (${task.kind}): ${(e as Error).message}`);
      throw e;
    }
  }

  /** Marks `key` as used on `thread`; releases the least recently used shard beyond the budget. */
  private hold(thread: number, key: string, label: string, attemptsMade: number): void {
    const keys = this.held[thread];
    const at = keys.indexOf(key);
    if (at >= 0) keys.splice(at, 1);
    else this.opts.log(`holding shard ${key} (from ${label}${attemptsMade > 0 ? `, attempt ${attemptsMade + 1}` : ''})`);
    keys.push(key);
    while (keys.length > SHARDS_PER_THREAD) {
      const old = keys.shift()!;
      this.pool.post(thread, { kind: 'close', shard: old }, `release of shard ${old}`);
    }
  }

  /** Stops taking tasks, lets the running ones finish, ends the threads. */
  async close(): Promise<void> {
    try {
      await this.worker.close();
      await this.pool.destroy();
    } finally {
      this.client.disconnect();
    }
  }

}

/** Test hook: CIRCUITRY_TEST_SHARD_DELAY_MS=N holds every task N ms first (a worker killed mid-task). */
async function testDelay(): Promise<void> {
  const ms = Number(process.env.CIRCUITRY_TEST_SHARD_DELAY_MS ?? 0);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** The thread of a shard: a stable hash of its key. */
function threadOf(key: string, threads: number): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return (h >>> 0) % threads;
}
