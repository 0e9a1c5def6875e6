import { createProgress } from './progress.js';
import { runSweep, runWorker } from '../sweep/index.js';

export async function sweepCli(args: { sweep: string; outDir?: string; redis?: string; queue?: string; workers?: string; resume: boolean; report: boolean; backend?: string }): Promise<number> {
  const bar = createProgress('jobs');
  try {
    const s = await runSweep({
      file: args.sweep,
      outDir: args.outDir,
      redis: args.redis,
      queue: args.queue,
      workers: args.workers,
      resume: args.resume,
      report: args.report,
      backend: args.backend,
      log: (m) => console.error(m),
      onProgress: bar.update,
    });
    bar.stop();
    console.log(s.table);
    console.log(`wrote ${s.plan.outDir}/results.csv${s.compare ? ` and ${s.compare}` : ''} (${s.rows.length} circuits${s.resumed ? `, ${s.resumed} from an earlier run` : ''})`);
    if (s.failures.length === 0) return 0;
    console.error(`${s.failures.length} of ${s.plan.items.length} pipelines failed:\n${s.failures.map((f) => `  ${f.name}: ${f.reason}`).join('\n')}`);
    return 1;
  } finally {
    bar.stop();
  }
}

export async function workerCli(args: { redis: string; concurrency: string; queue?: string; lockSeconds: number; backend?: string }): Promise<number> {
  await runWorker({ redis: args.redis, concurrency: args.concurrency, queue: args.queue, lockSeconds: args.lockSeconds, backend: args.backend });
  return 0;
}
