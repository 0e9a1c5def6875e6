import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HAVE_REDIS, startRedis } from '../helpers/redis-server.js';
import { startCli, type CliProcess } from '../helpers/cli-process.js';
import { fmt } from './timing.js';

/**
 * `npm run bench redis`: one pipeline by `circuitry discover` in a fresh process, three ways on
 * this one machine: in-process (`--workers 1`), on the worker pool (`--workers 2`), and as shard
 * jobs on Redis for two `circuitry worker` processes (`--redis URL --workers 2`). On one machine
 * this measures what Redis costs (a job per task and its reply through Redis, each worker
 * process loading the model), not a speed-up: that comes from more machines.
 * CIRCUITRY_BENCH_REDIS=small runs a smaller pipeline (a quick check that it runs).
 */
export async function benchRedis(log: (line: string) => void): Promise<void> {
  if (!HAVE_REDIS) {
    log('skipped: no redis-server on this machine (Debian: apt-get install redis-server)');
    return;
  }
  const small = process.env.CIRCUITRY_BENCH_REDIS === 'small';
  const pipeline = small
    ? { model: 'mini-gpt2', task: '{ name: ioi, n: 24, seed: 1 }', top: 40 }
    : { model: 'mini-gpt2-l4h8', task: '{ name: ioi, n: 64, seed: 1 }', top: 150 };
  log(`${pipeline.model}, ioi ${pipeline.task}, batches of 8, verify top ${pipeline.top}; ${availableParallelism()} cores; one machine: Redis shows its overhead here, not a speed-up`);
  const dir = mkdtempSync(join(tmpdir(), 'circuitry-bench-redis-'));
  const redis = await startRedis();
  const workers: CliProcess[] = [];
  const yaml = (name: string) => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, `model: ${pipeline.model}\ntask: ${pipeline.task}\nbatch_size: 8\nverify: { top: ${pipeline.top} }\noutput: ${join(dir, `${name}.json`)}\n`);
    return path;
  };
  // asynchronous: the workers' output keeps being read meanwhile
  const run = async (name: string, flags: string[]): Promise<number> => {
    const t0 = performance.now();
    const p = startCli(['discover', yaml(name), '--no-report', ...flags]);
    const code = await p.exited;
    if (code !== 0) throw new Error(`discover ${flags.join(' ')} failed:\n${p.output()}`);
    return (performance.now() - t0) / 1000;
  };
  const kept = (name: string) => {
    const f = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { edges: Record<string, { in_graph: boolean }>; meta: { acdc: unknown; metrics: unknown } };
    return JSON.stringify([Object.entries(f.edges).filter(([, e]) => e.in_graph).map(([n]) => n), f.meta.acdc, f.meta.metrics]);
  };
  try {
    const one = await run('one', ['--workers', '1']);
    log(`--workers 1 (in-process)              ${fmt(one)} s`);
    const two = await run('two', ['--workers', '2']);
    log(`--workers 2 (worker threads)           ${fmt(two)} s   ${fmt(one / two)}× of --workers 1`);
    // the workers start before the clock (as they would wait on their machines); their threads,
    // tfjs and model load on the first task, inside the timed run (as the pool's do)
    for (let i = 0; i < 2; i++) workers.push(startCli(['worker', '--redis', redis.url]));
    await Promise.all(workers.map((w) => w.waitFor(/waiting for jobs/)));
    const viaRedis = await run('redis', ['--redis', redis.url, '--workers', '2']);
    log(`--redis, 2 workers, 2 shards           ${fmt(viaRedis)} s   ${fmt(one / viaRedis)}× of --workers 1, ${fmt(two / viaRedis)}× of --workers 2`);
    const jobs = workers.map((w) => (w.output().match(/holding shard/g) ?? []).length);
    log(`shards built per worker process: ${jobs.join(', ')} (a worker that takes a task of a shard it does not hold builds it)`);
    const same = kept('one') === kept('redis') && kept('two') === kept('redis');
    log(`same circuit (kept edges, ACDC decisions, metrics) all three ways: ${same ? 'yes' : 'NO'}`);
  } finally {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
