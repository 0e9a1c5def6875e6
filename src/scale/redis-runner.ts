import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { CircuitryError, InterruptedError } from '../errors.js';
import { raiseReply } from './pool.js';
import type { WorkerTask } from './protocol.js';
import { checkRedis, connect, withTimeout, type RedisTarget } from './redis.js';
import type { ShardRunner, WorkerOk } from './runner.js';
import { decodeReply, encodeTask } from './wire.js';

/** The queue of shard tasks beside a sweep queue: `<queue>-shards`. */
export function shardQueueName(queue: string): string {
  return `${queue}-shards`;
}

/**
 * A shard task is idempotent (a worker rebuilds its shard from the task when it does not hold
 * it), so BullMQ may run it again: after an error (attempts, short backoff) or when its worker
 * died (stalled-job detection on the workers' side), and the runner sends it again when Redis
 * lost it (restarted without persistence). The reply travels in the completion event.
 */
const JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'fixed', delay: 500 },
  // kept a while: the reply can be read from the job if its completion event was missed
  removeOnComplete: { age: 300, count: 2000 },
  removeOnFail: { age: 3600 },
} as const;

/** How often a running task's job is looked at (lost with a restarted Redis, or its event missed). */
const WATCH_MS = 2000;
/** How long Redis may be unreachable before the run stops (its checkpoint keeps the finished work). */
const OUTAGE_MS = 120_000;

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
  /** Redis stopped answering (said once until it is back). */
  private down = false;
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
    const name = `${task.kind} ${what}`;
    const add = () => this.untilBack(this.queue.add(name, data, JOB_OPTIONS), what);
    let job = await add();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new InterruptedError());
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    const idle = setTimeout(() => void this.warnIdle(job.id ?? '?', what), IDLE_WARNING_MS);
    try {
      for (;;) {
        const watch = { stop: false };
        let outcome: { done: unknown } | { lost: true };
        try {
          outcome = await Promise.race([job.waitUntilFinished(this.events).then((v: unknown) => ({ done: v })), this.watch(job.id!, watch), aborted]);
        } finally {
          watch.stop = true;
        }
        if ('done' in outcome) return raiseReply(decodeReply(outcome.done, `${what}, shard job ${job.id}`), `${what}, shard job ${job.id}`);
        // gone from Redis (restarted without persistence): the task is idempotent, send it again
        this.log(`${what}: shard job ${job.id} is no longer in Redis (restarted without persistence?); queued again`);
        job = await add();
      }
    } catch (e) {
      if (signal?.aborted || e instanceof InterruptedError) {
        void job.remove().catch(() => {}); // a waiting job is dropped; a running one finishes unread
        throw new InterruptedError();
      }
      if (this.destroyed) throw new InterruptedError('the Redis shard runner was closed');
      if (e instanceof CircuitryError) throw e;
      throw new CircuitryError(`${what}: shard job ${job.id} on queue '${this.queueName}' failed on the workers: ${(e as Error).message}`);
    } finally {
      clearTimeout(idle);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Looks at a job every WATCH_MS until `w.stop`: resolves `lost` when Redis no longer has it,
   * `done` with its return value when it finished and the event was missed (a reconnection),
   * and fails after OUTAGE_MS without an answer from Redis.
   */
  private async watch(jobId: string, w: { stop: boolean }): Promise<{ done: unknown } | { lost: true }> {
    for (;;) {
      await new Promise((r) => setTimeout(r, WATCH_MS).unref());
      if (w.stop || this.destroyed) return new Promise(() => {}); // the race is over
      const state = await this.untilBack(this.queue.getJobState(jobId), `shard job ${jobId}`);
      if (w.stop) return new Promise(() => {});
      if (state === 'unknown') return { lost: true };
      if (state === 'completed' || state === 'failed') {
        const job = await this.untilBack(this.queue.getJob(jobId), `shard job ${jobId}`);
        if (!job) return { lost: true };
        if (state === 'failed') throw new Error(job.failedReason || 'failed');
        return { done: job.returnvalue };
      }
    }
  }

  /**
   * `p`, a call to Redis (which waits while Redis is away and ioredis reconnects); says once
   * that Redis is lost, and gives up after OUTAGE_MS (the checkpoint keeps the finished work).
   */
  private async untilBack<T>(p: Promise<T>, what: string): Promise<T> {
    const slow = setTimeout(() => {
      if (this.down || this.destroyed) return;
      this.down = true;
      this.log(`lost Redis at ${this.target.label} (${what} waits for it)`);
    }, 5000);
    try {
      const value = await withTimeout(p, OUTAGE_MS);
      if (this.down) {
        this.down = false;
        this.log(`Redis at ${this.target.label} is back`);
      }
      return value;
    } catch (e) {
      if (this.destroyed) throw new InterruptedError('the Redis shard runner was closed');
      throw new CircuitryError(`Redis at ${this.target.label} has not answered for ${OUTAGE_MS / 1000} s (${(e as Error).message}); the checkpoint keeps the finished work: run again with --resume when it is back`);
    } finally {
      clearTimeout(slow);
    }
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
