import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HAVE_REDIS, startRedis, type RedisServer } from './helpers/redis-server.js';
import { CLI, startCli, type CliProcess } from './helpers/cli-process.js';
import { TINY } from './helpers/fixtures.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * --redis on the commands with pooled work besides discover (acdc, attribute, evaluate, patch,
 * trace): their shards run as jobs on `circuitry worker` processes, and the outputs equal
 * `--workers 1`. tiny-gpt2 on its fixture dataset, one worker: one shard.
 */

const data = ['--model', join(TINY, 'model'), '--dataset', join(TINY, 'dataset.jsonl')];
const acdc = ['acdc', ...data, '--threshold', '0.001', '--metric', 'kl', '--order', 'auto-circuit'];
const attribute = ['attribute', ...data, '--method', 'eap', '--top', '5'];

/** Runs the CLI to completion (asynchronously, so a worker in this process's children keeps running). */
function run(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (status) => resolve({ status, out }));
  });
}

/** A circuit file without what differs between two runs (wall times, creation time, how it ran). */
const circuit = (path: string) => JSON.parse(readFileSync(path, 'utf8'), (k, v) => (k === 'seconds' || k === 'timings' || k === 'created' ? undefined : v)) as { edges: Record<string, { score: number; in_graph: boolean }>; meta: Record<string, unknown> };

describe('--queue without --redis', () => {
  it('is refused before the model loads, on every command that takes --redis', () => {
    for (const args of [acdc, attribute]) {
      const r = spawnSync('node', [CLI, ...args, '--out', join(tmpdir(), 'never.json'), '--queue', 'q'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain('--queue: only with --redis');
    }
  });
});

describe.skipIf(!HAVE_REDIS)('acdc, attribute and evaluate --redis with a circuitry worker', { timeout: 300_000 }, () => {
  let redis: RedisServer;
  let dir: string;
  let worker: CliProcess;

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'circuitry-cli-redis-'));
    worker = startCli(['worker', '--redis', redis.url, '--lock-seconds', '2']);
    await worker.waitFor(/waiting for jobs on queues 'circuitry' and 'circuitry-shards'/);
  }, 120_000);

  /** The kinds of the shard jobs the worker finished (job names start with the task's kind). */
  const finishedKinds = async (): Promise<string[]> => {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue('circuitry-shards', { connection });
    try {
      return (await queue.getCompleted(0, -1)).map((j) => j.name.split(' ')[0]);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  };

  /** The circuit files `args` writes with --workers 1 and with --redis. */
  const localAndRemote = async <T = ReturnType<typeof circuit>>(args: string[], name: string, read: (path: string) => T = circuit as (path: string) => T) => {
    const files = [join(dir, `${name}-local.json`), join(dir, `${name}-remote.json`)];
    for (const [i, flags] of [['--workers', '1'], ['--redis', redis.url]].entries()) {
      const r = await run([...args, ...flags, '--out', files[i]]);
      expect(r.status, r.out).toBe(0);
    }
    return files.map(read);
  };

  afterAll(async () => {
    await worker?.kill('SIGKILL');
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('acdc: the same decisions and kept edges as --workers 1, and evaluate agrees on them', async () => {
    const [a, b] = await localAndRemote(acdc, 'acdc');
    expect(b.edges).toEqual(a.edges);
    expect(b.meta.acdc).toEqual(a.meta.acdc);
    expect(Object.values(a.edges).some((e) => e.in_graph)).toBe(true);
    expect(worker.output()).toMatch(/holding shard/);
    expect(await finishedKinds()).toContain('evaluate');

    const evaluate = async (...flags: string[]) => {
      const r = await run(['evaluate', join(dir, 'acdc-local.json'), '--metric', 'kl', '--json', ...flags]);
      expect(r.status, r.out).toBe(0);
      return JSON.parse(r.out.slice(r.out.indexOf('{')));
    };
    expect(await evaluate('--redis', redis.url)).toEqual(await evaluate('--workers', '1'));
  });

  it('patch and trace: the output of --workers 1, their tasks run by the worker', async () => {
    const read = (path: string) => JSON.parse(readFileSync(path, 'utf8'), (k, v) => (k === 'seconds' || k === 'created' || k === 'timings' || k === 'provenance' ? undefined : v));
    const commands = {
      patch: ['patch', ...data, '--sweep', 'heads'],
      trace: ['trace', '--model', join(TINY, 'model'), '--tokens', '3,7,11,5', '--answer-id', '9', '--samples', '2'],
    };
    for (const [name, args] of Object.entries(commands)) {
      const [a, b] = await localAndRemote(args, name, read);
      expect(b, name).toEqual(a);
    }
    expect(await finishedKinds()).toEqual(expect.arrayContaining(['sweep', 'trace']));
  });

  it('attribute: the scores of --workers 1', async () => {
    const [a, b] = await localAndRemote(attribute, 'attribute');
    for (const [name, e] of Object.entries(a.edges)) expect(Math.abs(b.edges[name].score - e.score), name).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e.score)));
    expect(Object.keys(b.edges)).toEqual(Object.keys(a.edges));
    expect(await finishedKinds()).toContain('attribute-data');
  });
});
