import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { HAVE_REDIS, freePort, startRedis, type RedisServer } from './helpers/redis-server.js';
import { CLI, startCli, type CliProcess } from './helpers/cli-process.js';
import { encodeTask } from '../src/scale/wire.js';
import { VERSION } from '../src/version.js';

/**
 * `discover --redis`: the pipeline's pooled stages (screen, verify, ACDC, evaluation) as shard
 * jobs for `circuitry worker` processes, against a real redis-server on a loopback port of the
 * test's own. mini-gpt2 on 24 IOI pairs in batches of 8: three chunks of prompts.
 */

interface CircuitJson {
  edges: Record<string, { score: number; in_graph: boolean }>;
  meta: Record<string, unknown> & { edge_evidence: Record<string, { verified?: number }> };
}

/** A circuit file without what legitimately differs between two runs (wall times, creation time, output paths). */
const read = (path: string) => JSON.parse(readFileSync(path, 'utf8'), (k, v) => (k === 'timings' || k === 'created' || k === 'output' ? undefined : v)) as CircuitJson;

/**
 * The circuit of `--workers 1`: the same kept edges, ACDC decisions, verified effects, metrics,
 * faithfulness curve and pass counts; the screen's scores (summed per shard, weighted by its
 * share of the prompts) within 1e-6, exactly equal with a single shard.
 */
function expectSameCircuit(got: CircuitJson, want: CircuitJson, exact: boolean): void {
  const inGraph = (f: CircuitJson) => Object.entries(f.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
  expect(inGraph(got)).toEqual(inGraph(want));
  expect(inGraph(got).length).toBeGreaterThan(0);
  for (const k of ['acdc', 'metrics', 'faithfulness', 'pipeline', 'config', 'dataset', 'model']) expect(got.meta[k], k).toEqual(want.meta[k]);
  const verified = (f: CircuitJson) => Object.entries(f.meta.edge_evidence).map(([n, e]) => [n, e.verified]);
  expect(verified(got)).toEqual(verified(want));
  if (exact) expect(got).toEqual(want);
  else for (const [n, e] of Object.entries(want.edges)) expect(Math.abs(got.edges[n].score - e.score), n).toBeLessThan(1e-6);
}

describe.skipIf(!HAVE_REDIS)('circuitry discover --redis with circuitry worker processes', { timeout: 300_000 }, () => {
  let redis: RedisServer;
  let dir: string;
  let local: CircuitJson;
  let runs = 0;
  const procs: CliProcess[] = [];
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const p = startCli(args, env);
    procs.push(p);
    return p;
  };
  const pipeline = (name: string) => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, `model: mini-gpt2\ntask: { name: ioi, n: 24, seed: 1 }\nbatch_size: 8\nverify: { top: 40 }\noutput: ${join(dir, `${name}.json`)}\n`);
    return path;
  };
  const worker = (flags: string[] = [], env: NodeJS.ProcessEnv = {}) => cli(['worker', '--redis', redis.url, '--lock-seconds', '2', ...flags], env);
  /** discover --redis into a fresh file; resolves with its circuit once it exits 0. */
  const discover = (...flags: string[]) => {
    const name = `redis-${++runs}`;
    const p = cli(['discover', pipeline(name), '--no-report', '--redis', redis.url, ...flags]);
    return { p, circuit: async () => {
      expect(await p.exited, p.output()).toBe(0);
      return read(join(dir, `${name}.json`));
    } };
  };

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'circuitry-discover-redis-'));
    const r = spawnSync('node', [CLI, 'discover', pipeline('local'), '--no-report', '--workers', '1'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    local = read(join(dir, 'local.json'));
  }, 300_000);

  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    const c = new Redis(redis.url);
    await c.flushall();
    c.disconnect();
  });

  afterAll(async () => {
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('one worker: one shard (one per listening worker), the circuit JSON of --workers 1 exactly', async () => {
    const w = worker();
    await w.waitFor(/waiting for jobs on queues 'circuitry' and 'circuitry-shards'/);
    const run = discover();
    const got = await run.circuit();
    expect(run.p.output()).toMatch(/on 1 shard over Redis/);
    expectSameCircuit(got, local, true);
    expect(w.output()).toMatch(/holding shard \S+#0/);
  });

  it('two workers, --workers 2 shards on a named queue: the circuit of --workers 1', async () => {
    const ws = [worker(['--queue', 'q2']), worker(['--queue', 'q2'])];
    await Promise.all(ws.map((w) => w.waitFor(/waiting for jobs on queues 'q2' and 'q2-shards'/)));
    const run = discover('--workers', '2', '--queue', 'q2');
    const got = await run.circuit();
    expect(run.p.output()).toMatch(/on 2 shards over Redis/);
    expectSameCircuit(got, local, false);
    // both workers took shard jobs
    for (const w of ws) expect(w.output()).toMatch(/holding shard/);
  });

  it('a worker killed (SIGKILL) mid-task: BullMQ hands its task to another worker and the run finishes with the same circuit', async () => {
    // each task held 300 ms: the first worker is surely inside one when it is killed
    const first = worker([], { CIRCUITRY_TEST_SHARD_DELAY_MS: '300' });
    await first.waitFor(/waiting for jobs/);
    const run = discover('--workers', '2');
    await first.waitFor(/holding shard \S+#1/);
    await first.kill('SIGKILL');
    const second = worker();
    const got = await run.circuit();
    expect(run.p.output()).toMatch(/shard job \d+: its worker stopped renewing the lock \(killed\?\); BullMQ hands it to another worker/);
    expect(second.output()).toMatch(/holding shard \S+#0/);
    expectSameCircuit(got, local, false);
  });

  it('Ctrl-C writes the checkpoint, and --resume over Redis finishes with the circuit of --workers 1', async () => {
    const w = worker([], { CIRCUITRY_TEST_SHARD_DELAY_MS: '300' });
    await w.waitFor(/waiting for jobs/);
    const yaml = pipeline('interrupted');
    const first = cli(['discover', yaml, '--no-report', '--redis', redis.url]);
    await first.waitFor(/verify: \d+ of \d+ candidates/); // ACDC is running
    first.proc.kill('SIGINT');
    expect(await first.exited, first.output()).toBe(130);
    expect(first.output()).toMatch(/resume with: circuitry discover \S+ --redis URL --resume/);
    const resumed = cli(['discover', yaml, '--no-report', '--redis', redis.url, '--resume']);
    expect(await resumed.exited, resumed.output()).toBe(0);
    expect(resumed.output()).toMatch(/verify: .*\(from the checkpoint\)/);
    expectSameCircuit(read(join(dir, 'interrupted.json')), local, true);
  });

  it('Redis restarted (empty) mid-run: lost shard jobs are queued again and the run finishes with the same circuit', async () => {
    // tasks held 0.8 s each: ACDC's first one is surely in flight when Redis goes
    const w = worker([], { CIRCUITRY_TEST_SHARD_DELAY_MS: '800' });
    await w.waitFor(/waiting for jobs/);
    const run = discover();
    await run.p.waitFor(/verify: \d+ of \d+ candidates/);
    await new Promise((r) => setTimeout(r, 300)); // ACDC's first task is queued and taken
    await redis.restart();
    const got = await run.circuit();
    expect(run.p.output()).toMatch(/shard job \d+ is no longer in Redis \(restarted without persistence\?\); queued again/);
    expectSameCircuit(got, local, true);
  });

  it('a bad URL or an unreachable Redis fails fast, before the model loads', async () => {
    const yaml = pipeline('bad');
    const t0 = Date.now();
    const bad = spawnSync('node', [CLI, 'discover', yaml, '--redis', 'localhost:6379'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--redis: expected a redis:// or rediss:// URL');
    const port = await freePort();
    const down = spawnSync('node', [CLI, 'discover', yaml, '--redis', `redis://:secret@127.0.0.1:${port}`], { encoding: 'utf8' });
    expect(down.status).toBe(1);
    expect(down.stderr).toContain(`--redis: cannot reach Redis at redis://:***@127.0.0.1:${port} (connect ECONNREFUSED`);
    expect(down.stderr + down.stdout).not.toContain('secret');
    for (const r of [bad, down]) expect(r.stdout).not.toMatch(/pairs ×/); // the model never loaded
    expect(Date.now() - t0).toBeLessThan(60_000);
    const queueOnly = spawnSync('node', [CLI, 'discover', yaml, '--queue', 'q'], { encoding: 'utf8' });
    expect(queueOnly.status).toBe(1);
    expect(queueOnly.stderr).toContain('--queue: only with --redis');
  });

  it('a worker refuses a shard task of another circuitry major version, and BullMQ does not retry it', async () => {
    const w = worker();
    await w.waitFor(/waiting for jobs/);
    const major = Number(VERSION.split('.')[0]) + 1;
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue('circuitry-shards', { connection });
    try {
      const job = await queue.add('noop', { ...encodeTask({ kind: 'noop' }), version: `${major}.0.0` }, { attempts: 3 });
      await w.waitFor(/refused shard job/);
      let state = await job.getState();
      for (let i = 0; i < 50 && state !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        state = await job.getState();
      }
      const failed = await queue.getJob(job.id!);
      expect(failed!.failedReason).toBe(`shard job ${job.id}: made by circuitry ${major}.0.0, but this worker is circuitry ${VERSION}; run workers of major version ${major} for it`);
      expect(failed!.attemptsMade).toBe(1);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });
});
