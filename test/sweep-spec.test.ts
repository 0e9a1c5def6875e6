import { describe, it, expect } from 'vitest';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { loadModel } from '../src/model/load.js';
import { loadJsonlDataset } from '../src/tasks/index.js';
import { runPipeline } from '../src/discovery/pipeline.js';
import { ModelCache, runJob } from '../src/sweep/job.js';
import { TINY } from './helpers/fixtures.js';
import { tempDir } from './helpers/io-files.js';
import { planSweep, jobKey } from '../src/sweep/spec.js';
import { checkPayload, jobPayload } from '../src/sweep/job.js';
import { parseRedisUrl, redact } from '../src/sweep/redis.js';
import { checkWorkerCount } from '../src/sweep/sweep.js';
import { VERSION } from '../src/version.js';

const inline = { name: 'ind', model: 'planted-induction', task: 'induction' };

describe('sweep files', () => {
  it('expands runs × grid in order, names each output from its run and grid values, and sets the config of each', () => {
    const plan = planSweep({ runs: ['pipelines/planted-or.yaml', inline], grid: { 'prune.tau': [0.01, 0.02], 'task.seed': [1, 2] } }, 's.yaml', 'out');
    expect(plan.items.map((i) => i.name)).toEqual([
      'planted-or_tau=0.01_seed=1', 'planted-or_tau=0.01_seed=2', 'planted-or_tau=0.02_seed=1', 'planted-or_tau=0.02_seed=2',
      'ind_tau=0.01_seed=1', 'ind_tau=0.01_seed=2', 'ind_tau=0.02_seed=1', 'ind_tau=0.02_seed=2',
    ]);
    const last = plan.items[7];
    expect(last.config.prune.tau).toBe(0.02);
    // `task: induction` became {name: induction, seed: 2}; other task defaults as in a pipeline file
    expect(last.config.task).toEqual({ name: 'induction', n: 64, seed: 2, options: {} });
    expect(last.config.output).toEqual({ graph: join('out', 'graphs', 'ind_tau=0.02_seed=2.json'), report: join('out', 'reports', 'ind_tau=0.02_seed=2.html') });
    // the file run keeps its own settings and loses its own output
    expect(plan.items[0].config.model).toBe('planted-or');
    expect(plan.items[0].config.task?.name).toBe('first-color');
    expect(new Set(plan.items.map((i) => i.key)).size).toBe(8);
  });

  it('keys a job by its content: equal configs in any key order hash equally, any change changes the key', () => {
    const a = planSweep({ runs: [{ name: 'x', model: 'planted-and', task: 'both-colors', prune: { tau: 0.1, order: 'acdc' } }] }, 's', 'o').items[0];
    const b = planSweep({ runs: [{ prune: { order: 'acdc', tau: 0.1 }, task: 'both-colors', model: 'planted-and', name: 'x' }] }, 's', 'o').items[0];
    const c = planSweep({ runs: [{ name: 'x', model: 'planted-and', task: 'both-colors', prune: { tau: 0.11, order: 'acdc' } }] }, 's', 'o').items[0];
    expect(a.key).toBe(b.key);
    expect(a.key).not.toBe(c.key);
    expect(a.key).toMatch(/^run-[0-9a-f]{20}$/);
    expect(jobKey(a.pipeline)).toBe(a.key);
  });

  it('rejects bad sweep files with messages naming the file and the key', () => {
    const bad = (raw: unknown) => () => planSweep(raw, 'my.yaml', 'o');
    expect(bad({ runs: [] })).toThrow(/my\.yaml: invalid sweep file\n {2}runs: expected at least one run/);
    expect(bad({ runs: [inline], grid: { 'prune.taux': [1] } })).toThrow(/my\.yaml: run 'ind' with prune\.taux=1: invalid pipeline config\n {2}prune: Unrecognized key: "taux"/);
    expect(bad({ runs: [inline], grid: { 'bogus.key': [1] } })).toThrow(/Unrecognized key: "bogus"/);
    expect(bad({ runs: [inline], grid: { 'prune.tau': ['high'] } })).toThrow(/run 'ind' with prune\.tau=high: invalid pipeline config\n {2}prune\.tau: Invalid input: expected number/);
    expect(bad({ runs: [inline], grid: { 'prune.tau': [] } })).toThrow(/grid\.prune\.tau: expected a non-empty list of values/);
    expect(bad({ runs: [inline], grid: { 'output.graph': ['x.json'] } })).toThrow(/grid key 'output\.graph': the sweep names the outputs itself/);
    expect(bad({ runs: [inline], grid: { 'model.name': ['x'] } })).toThrow(/grid key 'model\.name' \(run 'ind'\): model is not a mapping/);
    expect(bad({ runs: [inline, inline] })).toThrow(/runs 1 and 2 are both named 'ind'/);
    expect(bad({ runs: [inline], grid: { 'task.ioi_names': ['a b', 'a/b'] } })).toThrow(/two combinations would both be named 'ind_ioi_names=a_b'/);
    expect(bad({ runs: ['nope/missing.yaml'] })).toThrow(/my\.yaml: runs\[0\]: nope\/missing\.yaml: cannot read the pipeline file/);
    expect(bad({ runs: [inline], extra: 1 })).toThrow(/Unrecognized key: "extra"/);
    expect(bad([1, 2])).toThrow(/my\.yaml: expected a mapping with runs:/);
  });
});

describe('sweep jobs', () => {
  const item = planSweep({ runs: [inline] }, 's', 'o').items[0];

  it('a worker refuses a job of another circuitry major version, saying which', () => {
    const major = Number(VERSION.split('.')[0]) + 1;
    expect(() => checkPayload({ ...jobPayload(item), version: `${major}.0.0` }, 'job run-1')).toThrow(`job run-1: made by circuitry ${major}.0.0, but this worker is circuitry ${VERSION}; run workers of major version ${major} for it`);
  });

  it('validates the payload by the pipeline schema and checks the id against the content', () => {
    expect(checkPayload(jobPayload(item), 'j').config.model).toBe('planted-induction');
    expect(() => checkPayload({ ...jobPayload(item), pipeline: { ...item.pipeline, prune: { tau: 'x' } } }, 'j')).toThrow(/j \(ind\): invalid pipeline config\n {2}prune\.tau/);
    expect(() => checkPayload({ ...jobPayload(item), pipeline: { ...item.pipeline, model: '../other' } }, 'j')).toThrow(/does not match its content/);
    expect(() => checkPayload({ ...jobPayload(item), code: 'process.exit()' }, 'j')).toThrow(/invalid job payload\n {2}\(top level\): Unrecognized key: "code"/);
  });

  it('worker counts are whole numbers ≥ 1', () => {
    expect(checkWorkerCount('2', '--workers')).toBe(2);
    expect(() => checkWorkerCount('0', '--workers')).toThrow("--workers: expected a whole number ≥ 1, got '0'");
    expect(() => checkWorkerCount('1.5', '--workers')).toThrow("--workers: expected a whole number ≥ 1, got '1.5'");
    expect(() => checkWorkerCount('two', '--concurrency')).toThrow("--concurrency: expected a whole number ≥ 1, got 'two'");
  });
});

describe('Redis URLs', () => {
  it('carry a user, a password, a database and TLS (rediss://); messages hide the password', () => {
    const t = parseRedisUrl('rediss://alice:s%40cret@cache.example.org:6380/2');
    expect(t.options).toMatchObject({ host: 'cache.example.org', port: 6380, db: 2, username: 'alice', password: 's@cret', tls: { servername: 'cache.example.org' } });
    expect(t.label).toBe('rediss://alice:***@cache.example.org:6380/2');
    expect(parseRedisUrl('rediss://127.0.0.1:6380').options.tls).toEqual({}); // no SNI for an address
    expect(parseRedisUrl('redis://:pw@h').options).toMatchObject({ host: 'h', port: 6379, db: 0, password: 'pw', tls: undefined });
    expect(redact('redis://:pw@h:1')).toBe('redis://:***@h:1');
    expect(() => parseRedisUrl('http://h:1')).toThrow("--redis: expected a redis:// or rediss:// URL, got 'http://…'");
    expect(() => parseRedisUrl('redis://h/x')).toThrow(/the database \(the URL's path\) must be a number/);
    expect(() => parseRedisUrl('not a url :pw@')).toThrow(/--redis: expected a URL/);
  });
});

describe('a job carries its dataset', () => {
  it('a worker runs a JSONL-dataset pipeline from the job alone (the file need not exist there), with the result of a local run', async () => {
    await initBackend('wasm');
    const dir = tempDir('circuitry-sweep-data-');
    const dataset = join(dir, 'pairs.jsonl');
    copyFileSync(join(TINY, 'dataset.jsonl'), dataset);
    const run = { name: 'tiny', model: join(TINY, 'model'), dataset, verify: { top: 20 } };
    const item = planSweep({ runs: [run] }, 's', join(dir, 'out')).items[0];
    const payload = jobPayload(item);
    expect(payload.datasetText).toContain('"clean"');
    // planning again gives the same job (other dataset text would not: see the end)
    const other = planSweep({ runs: [run] }, 's', join(dir, 'out')).items[0];
    expect(other.key).toBe(item.key);

    // the reference: the pipeline run directly on the file
    const loaded = await loadModel(run.model);
    const reference = await runPipeline(item.config, loaded, loadJsonlDataset(dataset, loaded.tokenizer));
    loaded.model.dispose();

    rmSync(dataset);
    const models = new ModelCache();
    try {
      const { config } = checkPayload(payload, 'job');
      const result = await runJob(payload, config, models);
      const strip = (f: unknown) => JSON.parse(JSON.stringify(f, (k, v) => (k === 'timings' || k === 'created' ? undefined : v)));
      expect(strip(result.circuit)).toEqual(strip(reference.file));
      expect(result.circuit.meta?.config).toMatchObject({ dataset, output: item.config.output });
    } finally {
      models.dispose();
    }
    expect(() => checkPayload({ ...payload, datasetText: undefined }, 'job')).toThrow(/names dataset .*pairs\.jsonl but the job carries no dataset text/);
    expect(() => checkPayload({ ...payload, datasetText: payload.datasetText + '\n' }, 'job')).toThrow(/does not match its content/);
  });
});
