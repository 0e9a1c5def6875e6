import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { CircuitryError, InterruptedError } from '../errors.js';
import { raiseReply } from './pool.js';
import type { WorkerTask } from './protocol.js';
import { checkRedis, connect, type RedisTarget } from './redis.js';
import type { ShardRunner, WorkerOk } from './runner.js';
import { decodeReply, encodeTask } from './wire.js';

/** The queue of shard tasks beside a sweep queue: `<queue>-shards`. */
export function shardQueueName(queue: string): string {
  return `${queue}-shards`;
}

/**
 * A shard task is idempotent (a worker rebuilds its shard from the task when it does not hold
 * it), so BullMQ may run it again: after an error (attempts, short backoff) or when its worker
 * died (stalled-job detection on the workers' side). A finished job is removed at once: the
 * reply travels in the completion event.
 */
const JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'fixed', delay: 500 },
  removeOnComplete: true,
  removeOnFail: { age: 3600 },
} as const;

/** How long a task may wait before the runner says that no worker seems to take it. */
const IDLE_WARNING_MS = 20_000;

export interface RedisShardRunnerOptions {
  /** The sweep queue's name (default circuitry); shard tasks go to `<queue>-shards`. */
  readonly queue: string;
  /** Shards to split work into (default: the workers listening on the queue, at least 1). */
  readonly shards?: number;
  readonly log?: (message: string) => void;
}

/**
 * The pool's tasks as BullMQ jobs (`discover --redis`): one job per task on `<queue>-shards`,
 * taken by any `circuitry worker --redis` process, the reply in the job's return value (wire.ts
 * JSON, validated here). The model travels by name. Workers cache the shards they built, so
 * results equal the in-process run's whichever worker ran which task.
 */
export class RedisShardRunner implements ShardRunner {
  readonly remote = true;
  private destroyed = false;
  private warned = false;
  private readonly log: (message: string) => void;

  private constructor(
    readonly size: number,
    readonly queueName: string,
    private readonly target: RedisTarget,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly clients: readonly Redis[],
    log: (message: string) => void,
  ) {
    this.log = log;
    // a worker that died mid-task (its lock expired): BullMQ gives the task to another worker
    events.on('stalled', ({ jobId }) => {
      if (!this.destroyed) this.log(`shard job ${jobId}: its worker stopped renewing the lock (killed?); BullMQ hands it to another worker`);
    });
    events.on('error', () => {}); // reconnection is ioredis' job
    queue.on('error', () => {});
  }

  /** Checks the URL and the server (fails fast), then opens the queue and its event stream. */
  static async connect(target: RedisTarget, opts: RedisShardRunnerOptions): Promise<RedisShardRunner> {
    const log = opts.log ?? ((m: string) => console.error(m));
    if (opts.shards !== undefined && !(Number.isSafeInteger(opts.shards) && opts.shards >= 1)) throw new CircuitryError(`shards: expected a positive integer, got ${opts.shards}`);
    await checkRedis(target);
    const name = shardQueueName(opts.queue);
    const clients = [connect(target), connect(target)];
    const queue = new Queue(name, { connection: clients[0] });
    const events = new QueueEvents(name, { connection: clients[1] });
    try {
      await queue.waitUntilReady();
      // no event may be missed: the stream is read from before the first job is added
      await events.waitUntilReady();
      const listening = await queue.getWorkersCount();
      if (listening === 0) log(`no circuitry worker is listening on queue '${name}' at ${target.label} yet; the shards wait for one (start: circuitry worker --redis URL)`);
      return new RedisShardRunner(opts.shards ?? Math.max(1, listening), name, target, queue, events, clients, log);
    } catch (e) {
      await Promise.allSettled([queue.close(), events.close()]);
      clients.forEach((c) => c.disconnect());
      throw e;
    }
  }

  async run(shard: number, task: WorkerTask, what: string, signal?: AbortSignal): Promise<WorkerOk> {
    if (this.destroyed) throw new InterruptedError('the Redis shard runner was closed');
    if (signal?.aborted) throw new InterruptedError();
    const data = encodeTask(task);
    const job = await this.queue.add(`${task.kind} ${what}`, data, JOB_OPTIONS);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new InterruptedError());
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    const idle = setTimeout(() => void this.warnIdle(job.id ?? '?', what), IDLE_WARNING_MS);
    let value: unknown;
    try {
      value = await Promise.race([job.waitUntilFinished(this.events), aborted]);
    } catch (e) {
      if (signal?.aborted || e instanceof InterruptedError) {
        void job.remove().catch(() => {}); // a waiting job is dropped; a running one finishes unread
        throw new InterruptedError();
      }
      if (this.destroyed) throw new InterruptedError('the Redis shard runner was closed');
      throw new CircuitryError(`${what}: shard job ${job.id} on queue '${this.queueName}' failed on the workers: ${(e as Error).message}`);
    } finally {
      clearTimeout(idle);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    return raiseReply(decodeReply(value, `${what}, shard job ${job.id}`), `${what}, shard job ${job.id}`);
  }

  /** Cache releases are not sent: a worker frees shards it has not used for a while itself. */
  post(): void {}

  private async warnIdle(jobId: string, what: string): Promise<void> {
    if (this.warned || this.destroyed) return;
    const state = await this.queue.getJobState(jobId).catch(() => 'unknown');
    if (state !== 'waiting' && state !== 'prioritized') return;
    this.warned = true;
    const listening = await this.queue.getWorkersCount().catch(() => 0);
    this.log(`${what}: shard job ${jobId} has waited ${IDLE_WARNING_MS / 1000} s on queue '${this.queueName}' at ${this.target.label} (${listening} worker${listening === 1 ? '' : 's'} listening); start one with: circuitry worker --redis URL`);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.clients.forEach((c) => c.disconnect());
  }
}
