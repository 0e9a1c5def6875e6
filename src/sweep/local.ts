import { initBackend } from '../backend/index.js';
import { checkPayload, jobPayload, ModelCache, runJob, type JobResult } from './job.js';
import { ProcessPool } from './pool.js';
import type { SweepItem } from './spec.js';

/**
 * Local executors: one worker runs the pipelines in this process, one after another; N workers
 * run them in N child processes, whole pipelines each.
 */
export interface LocalRunOptions {
  readonly workers: number;
  readonly backend?: string;
  readonly onResult: (item: SweepItem, result: JobResult) => Promise<void>;
  readonly onFailure: (item: SweepItem, reason: string) => void;
}

export async function runLocally(items: readonly SweepItem[], opts: LocalRunOptions): Promise<void> {
  // results are written one at a time, in the order they finish
  let writing = Promise.resolve();
  const settle = (item: SweepItem, p: Promise<JobResult>) =>
    p.then(
      (r) => (writing = writing.then(() => opts.onResult(item, r))),
      (e: Error) => opts.onFailure(item, e.message),
    );
  if (opts.workers === 1) {
    await initBackend(opts.backend);
    const models = new ModelCache();
    try {
      for (const item of items) {
        const payload = jobPayload(item);
        await settle(item, (async () => runJob(payload, checkPayload(payload, item.name).config, models))());
      }
    } finally {
      models.dispose();
    }
    return;
  }
  const pool = new ProcessPool(Math.min(opts.workers, items.length), opts.backend);
  try {
    await Promise.all(items.map((item) => settle(item, pool.run(jobPayload(item)))));
    await writing;
  } finally {
    await pool.close();
  }
}
