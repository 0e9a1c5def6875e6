import type { WorkerReply, WorkerTask } from './protocol.js';

/** A task's successful reply (a failed one is raised as an error by the runner). */
export type WorkerOk = Extract<WorkerReply, { ok: true }>;

/**
 * Where pooled work runs: what PooledPatcher and the Executor need from a pool. Two
 * implementations: WorkerPool (worker threads of this process, `--workers N`) and
 * RedisShardRunner (BullMQ jobs taken by `circuitry worker` processes, `--redis URL`).
 *
 * A task carries everything needed to rebuild its shard (the model reference, the prompts, the
 * settings), so whoever runs it gives the same reply; `shard` is where the task should run when
 * the runner can choose (a pool's thread that caches the shard), a hint for a queue.
 */
export interface ShardRunner {
  /** The shards work is split into (threads of a pool; the shard count chosen for a queue). */
  readonly size: number;
  /**
   * Whether the tasks leave this process: the model then travels by name (ModelRef 'name'),
   * never as shared weights, and work is sent even when it makes a single shard.
   */
  readonly remote: boolean;
  /** Runs `task` for shard `shard`; `what` names the work in messages ("shard 2 of 4 (prompts 8–15)"). */
  run(shard: number, task: WorkerTask, what: string, signal?: AbortSignal): Promise<WorkerOk>;
  /** Runs `task` without waiting for it (cache releases); its errors are ignored. */
  post(shard: number, task: WorkerTask, what: string): void;
  /** Ends the runner; tasks still running are abandoned. */
  destroy(): Promise<void>;
}
