import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { HAVE_OPENSSL, HAVE_REDIS, startRedis, startTlsRedis, type RedisServer } from './helpers/redis-server.js';
import { CLI, startCli, type CliProcess } from './helpers/cli-process.js';
import { SWEEP_YAML } from './helpers/sweep-fixture.js';
import { planSweep } from '../src/sweep/spec.js';
import { jobPayload } from '../src/sweep/job.js';
import { VERSION } from '../src/version.js';

/**
 * Distributed sweeps against a real redis-server on a loopback port of the test's own. Workers
 * use 2-second locks, so a job whose worker dies goes to another worker within seconds.
 */

/** A circuit file without what legitimately differs between two runs (wall times, creation time). */
const strip = (text: string) => JSON.parse(text, (k, v) => (k === 'timings' || k === 'created' ? undefined : v)) as unknown;

// several processes each (tsx start-up, model load): generous limits for a loaded CI machine
describe.skipIf(!HAVE_REDIS)('circuitry sweep --redis with circuitry worker processes', { timeout: 300_000 }, () => {
  let redis: RedisServer;
  let dir: string;
  let out: string;
  let sweepFile: string;
  const procs: CliProcess[] = [];
  const cli = (args: string[]) => {
    const p = startCli(args);
    procs.push(p);
    return p;
  };
  const worker = () => cli(['worker', '--redis', redis.url, '--lock-seconds', '2']);
  const sweep = (...flags: string[]) => cli(['sweep', sweepFile, '--out-dir', out, '--redis', redis.url, '--no-report', ...flags]);

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'circuitry-sweep-redis-'));
    sweepFile = join(dir, 's.yaml');
    out = join(dir, 'out');
    writeFileSync(sweepFile, SWEEP_YAML);
    // the reference: the same sweep run locally, into the same --out-dir (the config records it)
    const local = spawnSync('node', [CLI, 'sweep', sweepFile, '--out-dir', out, '--no-report'], { encoding: 'utf8' });
    expect(local.status, local.stderr).toBe(0);
    renameSync(out, join(dir, 'local'));
  }, 300_000);

  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    rmSync(out, { recursive: true, force: true });
    const c = new Redis(redis.url);
    await c.flushall();
    c.disconnect();
  });

  afterAll(async () => {
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const expectSameAsLocal = () => {
    const names = readdirSync(join(dir, 'local', 'graphs')).sort();
    expect(names).toHaveLength(4);
    expect(readdirSync(join(out, 'graphs')).filter((n) => n.endsWith('.json')).sort()).toEqual(names);
    for (const n of names) expect(strip(readFileSync(join(out, 'graphs', n), 'utf8')), n).toEqual(strip(readFileSync(join(dir, 'local', 'graphs', n), 'utf8')));
    const csv = (d: string) => readFileSync(join(d, 'results.csv'), 'utf8').split('\n').map((l) => l.split(',').slice(0, 7).join(','));
    expect(csv(out)).toEqual(csv(join(dir, 'local')));
    expect(existsSync(join(out, 'compare.html'))).toBe(true);
  };

  it('a worker killed (SIGKILL) mid-job: its job goes to another worker, nothing is lost, the outputs equal a local run', async () => {
    const first = worker();
    await first.waitFor(/waiting for jobs/);
    const coordinator = sweep();
    const [, jobId] = await first.waitFor(/job (run-[0-9a-f]+) \(\S+\): started/);
    await first.kill('SIGKILL');
    const second = worker();
    // the same job, picked up again by the second worker once the first one's lock expired
    await second.waitFor(new RegExp(`job ${jobId} \\(\\S+\\): started`));
    expect(await coordinator.exited, coordinator.output()).toBe(0);
    expect(first.output()).not.toMatch(new RegExp(`job ${jobId} \\(\\S+\\): done`));
    expectSameAsLocal();
  });

  it('Redis restarted (empty) mid-sweep: lost jobs are queued again and the sweep finishes', async () => {
    const w = worker();
    await w.waitFor(/waiting for jobs/);
    const coordinator = sweep();
    await coordinator.waitFor(/: \d+ edges in /);
    await redis.restart();
    expect(await coordinator.exited, coordinator.output()).toBe(0);
    expect(coordinator.output()).toMatch(/no longer in Redis|lost Redis/);
    expectSameAsLocal();
  });

  it('a coordinator that dies: sweep --resume keeps what it wrote and collects the rest from the queue', async () => {
    const w = worker();
    await w.waitFor(/waiting for jobs/);
    const coordinator = sweep();
    await coordinator.waitFor(/: \d+ edges in /);
    await coordinator.kill('SIGKILL');
    const resumed = sweep('--resume');
    expect(await resumed.exited, resumed.output()).toBe(0);
    expect(resumed.output()).toMatch(/\(4 circuits, [1-4] from an earlier run\)/);
    expectSameAsLocal();
  });

  it('a worker refuses a job of another circuitry major version with a clear message, and BullMQ does not retry it', async () => {
    const w = worker();
    await w.waitFor(/waiting for jobs/);
    const major = Number(VERSION.split('.')[0]) + 1;
    const item = planSweep({ runs: [{ name: 'x', model: 'planted-and', task: 'both-colors' }] }, 's', out).items[0];
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue('circuitry', { connection });
    try {
      await queue.add('x', { ...jobPayload(item), version: `${major}.0.0` }, { jobId: item.key, attempts: 3 });
      await w.waitFor(/refused job/);
      let job = await queue.getJob(item.key);
      for (let i = 0; i < 50 && (await job!.getState()) !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        job = await queue.getJob(item.key);
      }
      job = await queue.getJob(item.key);
      expect(await job!.getState()).toBe('failed');
      expect(job!.failedReason).toBe(`job ${item.key}: made by circuitry ${major}.0.0, but this worker is circuitry ${VERSION}; run workers of major version ${major} for it`);
      expect(job!.attemptsMade).toBe(1);
      expect(w.output()).toContain(`refused job ${item.key}: made by circuitry ${major}.0.0`);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });
});

describe.skipIf(!HAVE_REDIS || !HAVE_OPENSSL)('circuitry sweep over rediss:// (TLS) with a password', { timeout: 300_000 }, () => {
  it('runs a job through a TLS Redis that requires a password, and never prints the password', async () => {
    const password = 'pa ss/word';
    const redis = await startTlsRedis(password);
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-sweep-tls-'));
    const env = { NODE_EXTRA_CA_CERTS: redis.ca };
    const procs: CliProcess[] = [];
    try {
      writeFileSync(join(dir, 's.yaml'), 'runs:\n  - { name: ind, model: planted-induction, task: { name: induction, n: 16 } }\n');
      const w = startCli(['worker', '--redis', redis.url, '--lock-seconds', '2'], env);
      procs.push(w);
      await w.waitFor(/waiting for jobs/);
      const s = startCli(['sweep', join(dir, 's.yaml'), '--out-dir', join(dir, 'out'), '--redis', redis.url, '--no-report'], env);
      procs.push(s);
      expect(await s.exited, s.output()).toBe(0);
      const file = JSON.parse(readFileSync(join(dir, 'out', 'graphs', 'ind.json'), 'utf8'));
      expect(Object.values(file.edges as Record<string, { in_graph: boolean }>).filter((e) => e.in_graph)).toHaveLength(4);
      expect(w.output()).toContain(`at rediss://:***@localhost:${redis.tlsPort}`);
      for (const p of procs) expect(p.output()).not.toContain('pa ss');
      // without the CA the certificate is refused: a clear error, at once
      const refused = spawnSync('node', [CLI, 'worker', '--redis', redis.url], { encoding: 'utf8', timeout: 60_000 });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/cannot reach Redis at rediss:\/\/:\*\*\*@localhost:\d+ \(self-signed certificate/);
    } finally {
      await Promise.all(procs.map((p) => p.kill('SIGKILL')));
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
