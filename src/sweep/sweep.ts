import { join } from 'node:path';
import { writeFileAtomic } from '../graph/index.js';
import { CircuitryError } from '../errors.js';
import type { JobResult } from './job.js';
import { runLocally } from './local.js';
import { finishedOnDisk, readManifest, summarize, summaryCsv, summaryTable, writeResult, type SummaryRow } from './output.js';
import { runOnQueue } from './queue.js';
import { checkRedis, parseRedisUrl } from './redis.js';
import { readSweepPlan, type SweepItem, type SweepPlan } from './spec.js';

export interface SweepOptions {
  readonly file: string;
  readonly outDir?: string;
  /** A Redis URL: run the pipelines as BullMQ jobs on `circuitry worker` processes. */
  readonly redis?: string;
  readonly queue?: string;
  /** Local workers (without --redis): 1 = in this process, N = N child processes. */
  readonly workers?: number | string;
  /** Keep results already on disk (and, with Redis, jobs already queued or finished). */
  readonly resume?: boolean;
  /** Also write one HTML report per pipeline (default true). */
  readonly report?: boolean;
  readonly backend?: string;
  readonly log?: (message: string) => void;
  readonly onProgress?: (done: number, total: number) => void;
  /** Redis outage tolerated before giving up (ms). */
  readonly outageMs?: number;
}

export interface SweepSummary {
  readonly plan: SweepPlan;
  readonly rows: readonly SummaryRow[];
  readonly failures: readonly { name: string; reason: string }[];
  readonly resumed: number;
  readonly csv: string;
  readonly table: string;
  readonly compare?: string;
}

/** Checks a worker count from a flag: an integer ≥ 1. */
export function checkWorkerCount(value: unknown, flag: string): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new CircuitryError(`${flag}: expected a whole number ≥ 1, got ${typeof value === 'string' ? `'${value}'` : String(value)}`);
  return n;
}

/**
 * Runs every pipeline of a sweep file (locally or on BullMQ workers), writes each result as it
 * arrives, then the CSV table and the comparison page across all results. Everything is checked
 * (the sweep file, every combination's config, the Redis URL) before anything is written.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepSummary> {
  const log = opts.log ?? (() => {});
  const workers = checkWorkerCount(opts.workers ?? 1, '--workers');
  const target = opts.redis === undefined ? undefined : parseRedisUrl(opts.redis);
  if (target && opts.workers !== undefined) throw new CircuitryError('--workers: with --redis the workers are the `circuitry worker` processes; drop --workers');
  const plan = readSweepPlan(opts.file, opts.outDir);
  if (target) await checkRedis(target);

  const manifest = readManifest(plan);
  if (!opts.resume) manifest.results = {};
  const done = opts.resume ? finishedOnDisk(plan, manifest) : new Set<string>();
  const todo = plan.items.filter((i) => !done.has(i.name));
  const total = plan.items.length;
  log(`${plan.file}: ${total} pipelines${done.size ? `, ${done.size} already finished` : ''}; ${target ? `jobs on ${target.label}` : workers === 1 ? 'in this process' : `${workers} local workers`}; results in ${plan.outDir}`);

  let finished = done.size;
  opts.onProgress?.(finished, total);
  const failures: { name: string; reason: string }[] = [];
  const onResult = async (item: SweepItem, result: JobResult) => {
    await writeResult(plan, manifest, item, result, opts.report ?? true);
    opts.onProgress?.(++finished, total);
    log(`${item.name}: ${Object.values(result.circuit.edges).filter((e) => e.in_graph).length} edges in ${result.seconds.total.toFixed(1)} s (${result.worker})`);
  };
  const onFailure = (item: SweepItem, reason: string) => {
    failures.push({ name: item.name, reason });
    opts.onProgress?.(++finished, total);
    log(`${item.name}: failed: ${reason}`);
  };
  if (todo.length > 0) {
    if (target) await runOnQueue(todo, { target, queue: opts.queue, resume: opts.resume ?? false, outageMs: opts.outageMs, log, onResult, onFailure });
    else await runLocally(todo, { workers, backend: opts.backend, onResult, onFailure });
  }

  const rows = summarize(plan, manifest);
  const csv = summaryCsv(plan, rows);
  writeFileAtomic(join(plan.outDir, 'results.csv'), csv);
  let compare: string | undefined;
  if (rows.length >= 2) {
    const { writeComparison } = await import('../report/files.js');
    compare = writeComparison(rows.map((r) => r.graph), join(plan.outDir, 'compare.html')).out;
  }
  return { plan, rows, failures, resumed: done.size, csv, table: summaryTable(rows), compare };
}
