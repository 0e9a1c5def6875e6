import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { CircuitryError, InterruptedError } from '../errors.js';
import type { WorkerReply, WorkerTask } from './protocol.js';
import type { ShardRunner, WorkerOk } from './runner.js';

const ENTRY = fileURLToPath(new URL('./worker-entry.mjs', import.meta.url));

/**
 * N worker threads (piscina), one tfjs-wasm instance each. Tasks go to a given worker, since
 * each worker holds the caches of its own shard: one single-thread piscina pool per worker,
 * which replaces a worker that died. A task whose worker dies (killed, out of memory) is
 * retried once on the fresh worker (tasks carry everything a fresh worker needs); a second
 * death stops the run with a message naming the shard. An aborted signal (Ctrl-C) ends every
 * running task at once (piscina terminates the thread) with an InterruptedError.
 */
export class WorkerPool implements ShardRunner {
  readonly size: number;
  readonly remote = false;
  private readonly pools: (Piscina | undefined)[];
  private readonly log: (message: string) => void;
  private destroyed = false;

  constructor(size: number, opts: { log?: (message: string) => void; maxOldGenerationSizeMb?: number } = {}) {
    if (!Number.isSafeInteger(size) || size < 1) throw new CircuitryError(`workers: expected a positive integer, got ${size}`);
    this.size = size;
    this.pools = new Array<Piscina | undefined>(size).fill(undefined);
    this.log = opts.log ?? ((m) => console.error(m));
    this.resourceLimits = opts.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: opts.maxOldGenerationSizeMb } : undefined;
  }

  private readonly resourceLimits?: { maxOldGenerationSizeMb: number };

  private poolOf(w: number): Piscina {
    let p = this.pools[w];
    if (!p) {
      p = new Piscina({ filename: ENTRY, minThreads: 1, maxThreads: 1, idleTimeout: 2 ** 31 - 1, name: 'default', ...(this.resourceLimits ? { resourceLimits: this.resourceLimits } : {}) });
      // a reply that arrives while the pool is being destroyed: nothing waits for it any more
      p.on('error', (e: Error) => {
        if (!this.destroyed) this.log(`worker ${w + 1}: ${e.message}`);
      });
      this.pools[w] = p;
    }
    return p;
  }

  /** Runs `task` on worker `w`; `what` names the work in messages ("shard 2 of 4 (prompts 8–15)"). */
  async run(w: number, task: WorkerTask, what: string, signal?: AbortSignal): Promise<WorkerOk> {
    return raiseReply(await this.reply(w, task, what, signal), `worker ${w + 1}, ${what}`);
  }

  /**
   * Runs `task` on worker `w` and returns its reply, a failed one too (the work's own error);
   * throws only when the worker died twice, or when interrupted.
   */
  async reply(w: number, task: WorkerTask, what: string, signal?: AbortSignal): Promise<WorkerReply> {
    if (this.destroyed) throw new InterruptedError('the worker pool was closed');
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new InterruptedError();
      try {
        return (await this.poolOf(w).run(task, signal ? { signal } : {})) as WorkerReply;
      } catch (e) {
        if (signal?.aborted) throw new InterruptedError();
        if (this.destroyed) throw new InterruptedError('the worker pool was closed');
        const why = (e as Error).message ?? String(e);
        if (attempt === 0) {
          this.log(`worker ${w + 1} died running ${what} (${why}); retrying the shard on a fresh worker`);
          continue;
        }
        throw new CircuitryError(`worker ${w + 1} died again running ${what} (${why}); stopping (the checkpoint keeps the finished work)`);
      }
    }
  }

  /** Runs `task` without waiting for it (cache releases); its errors are ignored. */
  post(w: number, task: WorkerTask, what: string): void {
    if (this.destroyed || !this.pools[w]) return;
    void this.run(w, task, what).catch(() => {});
  }

  /**
   * Ends every worker thread at once: releases still queued are moot, and waiting for them
   * would delay Ctrl-C (a thread ended by the abort is restarted just to run them).
   */
  async destroy(): Promise<void> {
    this.destroyed = true; // no new tasks
    const pools = this.pools.filter((p): p is Piscina => p !== undefined);
    this.pools.fill(undefined);
    await Promise.all(pools.map((p) => p.destroy()));
  }
}

/** A reply as the caller sees it: the work's error raised again (CircuitryError and Ctrl-C as themselves). */
export function raiseReply(reply: WorkerReply, where: string): WorkerOk {
  if (reply.ok) return reply;
  if (reply.name === 'CircuitryError') throw new CircuitryError(reply.message);
  if (reply.name === 'InterruptedError') throw new InterruptedError();
  throw new Error(`${where}: ${reply.name}: ${reply.message}`);
}
