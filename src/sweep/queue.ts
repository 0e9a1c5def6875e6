import { Queue, type Job } from 'bullmq';
import { CircuitryError } from '../errors.js';
import { checkResult, jobPayload, type JobResult } from './job.js';
import { checkRedis, connect, withTimeout, type RedisTarget } from './redis.js';
import type { SweepItem } from './spec.js';

/**
 * The coordinator's side of a distributed sweep: one BullMQ job per pipeline, id = the config's
 * hash (adding an id that exists is a no-op in BullMQ, so a job is never queued twice), then a
 * poll of the jobs' states until each has completed or failed for good. Retries (attempts,
 * backoff) and lost workers (stalled-job detection) are BullMQ's; a job missing from Redis
 * (a restarted Redis without persistence) is simply queued again.
 */

export const DEFAULT_QUEUE = 'circuitry';

/** Job options: retried with backoff on errors; kept a week after completion as a backup for --resume. */
const JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: 7 * 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

export interface QueueRunOptions {
  readonly target: RedisTarget;
  readonly queue?: string;
  readonly resume: boolean;
  /** Give up when Redis has been unreachable this long (default 120 s); --resume continues. */
  readonly outageMs?: number;
  readonly pollMs?: number;
  readonly log: (message: string) => void;
  /** Called for each finished job, one at a time; the job is removed from Redis after it returns. */
  readonly onResult: (item: SweepItem, result: JobResult) => Promise<void>;
  readonly onFailure: (item: SweepItem, reason: string) => void;
}

export async function runOnQueue(items: readonly SweepItem[], opts: QueueRunOptions): Promise<void> {
  await checkRedis(opts.target);
  const client = connect(opts.target);
  const queue = new Queue(opts.queue ?? DEFAULT_QUEUE, { connection: client });
  queue.on('error', () => {}); // outages are reported by the poll below
  const pollMs = opts.pollMs ?? 500;
  const outageMs = opts.outageMs ?? 120_000;
  const add = (item: SweepItem) => queue.add(item.name, jobPayload(item), { ...JOB_OPTIONS, jobId: item.key });
  try {
    for (const item of items) {
      const existing = await queue.getJob(item.key);
      if (!existing) {
        await add(item);
        continue;
      }
      const state = await existing.getState();
      if (opts.resume) {
        if (state === 'failed') await existing.retry('failed');
        continue; // completed: collected below; waiting, delayed or active: waited for
      }
      if (state === 'active') throw new CircuitryError(`job ${item.key} (${item.name}) is being run by a worker for an earlier sweep; wait for it or use --resume`);
      await existing.remove();
      await add(item);
    }
    const pending = new Map(items.map((i) => [i.key, i]));
    let downSince: number | undefined;
    while (pending.size > 0) {
      try {
        await withTimeout(pollOnce(queue, pending, add, opts), Math.max(5000, pollMs * 4));
        if (downSince !== undefined) opts.log(`Redis at ${opts.target.label} is back after ${((Date.now() - downSince) / 1000).toFixed(0)} s`);
        downSince = undefined;
      } catch (e) {
        if (e instanceof CircuitryError) throw e;
        if (downSince === undefined) {
          downSince = Date.now();
          opts.log(`lost Redis at ${opts.target.label} (${(e as Error).message}); waiting for it`);
        } else if (Date.now() - downSince > outageMs) {
          throw new CircuitryError(`Redis at ${opts.target.label} has been unreachable for ${Math.round(outageMs / 1000)} s; finished results are saved; run the sweep again with --resume when it is back`);
        }
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    await queue.close().catch(() => {});
    client.disconnect();
  }
}

async function pollOnce(queue: Queue, pending: Map<string, SweepItem>, add: (item: SweepItem) => Promise<Job>, opts: QueueRunOptions): Promise<void> {
  for (const [key, item] of [...pending]) {
    const job = await queue.getJob(key);
    if (!job) {
      opts.log(`job ${key} (${item.name}) is no longer in Redis (restarted without persistence?); queued again`);
      await add(item);
      continue;
    }
    const state = await job.getState();
    if (state === 'completed') {
      let result: JobResult;
      try {
        result = checkResult(job.returnvalue, item, `job ${key}`);
      } catch (e) {
        opts.onFailure(item, (e as Error).message);
        pending.delete(key);
        continue;
      }
      await opts.onResult(item, result);
      pending.delete(key);
      await job.remove().catch(() => {});
    } else if (state === 'failed') {
      opts.onFailure(item, job.failedReason || 'failed');
      pending.delete(key);
    }
  }
}
