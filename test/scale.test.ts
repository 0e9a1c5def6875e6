import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { resolveDataset } from '../src/discovery/data.js';
import { graphForModel } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { runAcdc } from '../src/discovery/acdc.js';
import { screenEdges } from '../src/discovery/screen.js';
import { Executor, PooledPatcher, resolveWorkers, shardRanges } from '../src/scale/index.js';
import type { TaskDataset } from '../src/tasks/index.js';
import { CircuitryError } from '../src/errors.js';
import { CLI, circuitry } from './helpers/cli.js';
import { spawn } from 'node:child_process';

// mini-gpt2 on 24 IOI pairs in batches of 8: three chunks, split 2 + 1 over two workers
describe('worker pool (--workers N) gives the numbers of --workers 1', () => {
  let loaded: LoadedModel;
  let data: TaskDataset;
  const opts = { metric: 'logit-diff' as const, batchSize: 8 };
  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('mini-gpt2', { shareWeights: true });
    data = resolveDataset(loaded, { task: { name: 'ioi', n: 24, seed: 1, options: {} } });
  });
  afterAll(() => loaded?.model.dispose());

  it('shards are contiguous, cover every chunk, and never exceed the chunks', () => {
    expect(shardRanges(3, 2).map((s) => [s.start, s.end])).toEqual([[0, 2], [2, 3]]);
    expect(shardRanges(2, 8).map((s) => [s.start, s.end])).toEqual([[0, 1], [1, 2]]);
    expect(shardRanges(7, 3).map((s) => s.end - s.start)).toEqual([3, 2, 2]);
  });

  it('masks, ACDC decisions and kept edges are bit-identical; attribution agrees to 1e-6', async () => {
    const graph = graphForModel(loaded.model.cfg);
    const local = new Patcher(loaded.model, graph, data, opts);
    const executor = new Executor(loaded, 2);
    try {
      expect(loaded.shared!.bytes).toBeInstanceOf(SharedArrayBuffer);
      const pooled = await executor.patcher(graph, data, opts);
      expect(pooled).toBeInstanceOf(PooledPatcher);
      expect(executor.threads).toBe(2);
      // every worker built its model from the buffer, which goes: later workers read the folder
      expect(loaded.shared!.bytes).toBeUndefined();
      expect(pooled.cleanMetric).toBe(local.cleanMetric);
      expect(pooled.corruptedMetric).toBe(local.corruptedMetric);
      expect(pooled.masksPerPass).toBe(local.masksPerPass);
      const masks = graph.edges.filter((_, i) => i % 9 === 0).map((e) => {
        const m = local.fullMask();
        m[e.index] = 0;
        return m;
      });
      expect(await pooled.evaluateAsync(masks)).toEqual(await local.evaluateAsync(masks));

      const s1 = await screenEdges(local, 'eap-ig', 5);
      const s2 = await screenEdges(pooled, 'eap-ig', 5);
      const scale = Math.max(...Array.from(s1, Math.abs));
      expect(scale).toBeGreaterThan(0.1);
      for (let i = 0; i < s1.length; i++) expect(Math.abs(s1[i] - s2[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, scale));

      // ACDC over the 40 top-scored edges, as the pipeline prunes its verified candidates
      const tau = 0.02 * Math.abs(local.cleanMetric - local.corruptedMetric);
      const candidates = [...graph.edges].sort((x, y) => Math.abs(s1[y.index]) - Math.abs(s1[x.index])).slice(0, 40).map((e) => e.name);
      const a = await runAcdc(local, { tau, candidates, faith: 'abs-diff' });
      const b = await runAcdc(pooled, { tau, candidates, faith: 'abs-diff' });
      expect(b.steps).toEqual(a.steps);
      expect(b.kept).toEqual(a.kept);
      expect(a.steps.some((s) => !s.removed) && a.steps.some((s) => s.removed)).toBe(true);
      pooled.dispose();
    } finally {
      local.dispose();
      await executor.close();
    }
  });

  it("'auto' (no --workers) pools GPT-2 small and up on every core, and runs small models in-process", async () => {
    const { configFromHf } = await import('../src/model/config.js');
    const { SMALL_FAMILY_CONFIGS } = await import('./helpers/random-family.js');
    const { availableParallelism } = await import('node:os');
    for (const family of ['gpt2', 'neox', 'llama', 'gemma2']) expect(resolveWorkers('auto', configFromHf(SMALL_FAMILY_CONFIGS[family], family))).toBe(availableParallelism());
    expect(resolveWorkers('auto', loaded.model.cfg)).toBe(1);
    expect(resolveWorkers(3, loaded.model.cfg)).toBe(3);
    const executor = new Executor(loaded, 'auto');
    const p = await executor.patcher(graphForModel(loaded.model.cfg), data, opts);
    expect(p).toBeInstanceOf(Patcher);
    expect(executor.threads).toBe(0);
    p.dispose();
    await executor.close();
  });

  it('one chunk, or --workers 1, runs in-process', async () => {
    const graph = graphForModel(loaded.model.cfg);
    const executor = new Executor(loaded, 4);
    const p = await executor.patcher(graph, data, { ...opts, batchSize: 64 });
    expect(p).toBeInstanceOf(Patcher);
    expect(executor.threads).toBe(0);
    p.dispose();
    await executor.close();
  });

  // the shared buffer was released by the first test: the fresh worker builds from the folder
  it('a worker that dies is named with its shard and its shard retried on a fresh worker; dying again stops the run', async () => {
    const graph = graphForModel(loaded.model.cfg);
    const local = new Patcher(loaded.model, graph, data, opts);
    const masks = graph.edges.slice(0, 5).map((e) => {
      const m = local.fullMask();
      m[e.index] = 0;
      return m;
    });
    const expected = await local.evaluateAsync(masks);
    local.dispose();
    const marker = join(mkdtempSync(join(tmpdir(), 'circuitry-pool-')), 'died');
    const logs: string[] = [];
    process.env.CIRCUITRY_TEST_WORKER_DIES = marker;
    let executor = new Executor(loaded, 2, { log: (m) => logs.push(m) });
    try {
      const pooled = await executor.patcher(graph, data, opts);
      expect(await pooled.evaluateAsync(masks)).toEqual(expected);
      expect(existsSync(marker)).toBe(true);
      expect(logs.join('\n')).toMatch(/worker 2 died running shard 2 of 2 \(prompts 16–23\) \(.*\); retrying the shard on a fresh worker/);
    } finally {
      await executor.close();
    }
    process.env.CIRCUITRY_TEST_WORKER_DIES = 'always';
    executor = new Executor(loaded, 2, { log: () => {} });
    try {
      const pooled = await executor.patcher(graph, data, opts);
      const err = await pooled.evaluateAsync(masks).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CircuitryError);
      expect((err as Error).message).toMatch(/worker 2 died again running shard 2 of 2 \(prompts 16–23\)/);
    } finally {
      delete process.env.CIRCUITRY_TEST_WORKER_DIES;
      await executor.close();
    }
  });
});

describe('circuitry --workers', () => {
  it('0, a negative count or a non-integer is a usage error (exit 2) before anything loads', () => {
    for (const [cmd, bad] of [['discover', '0'], ['acdc', '-2'], ['evaluate', '1.5'], ['discover', 'many']] as const) {
      const args =
        cmd === 'discover' ? ['discover', 'pipelines/planted-induction.yaml'] : cmd === 'acdc' ? ['acdc', '--model', 'mini-gpt2', '--task', 'ioi', '--threshold', '0.1', '--out', '/tmp/x.json'] : ['evaluate', 'graphs/none.json'];
      const r = circuitry([...args, '--workers', bad]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`--workers: expected a positive integer, got '${bad}'`);
      expect(r.stdout).not.toMatch(/backend/);
    }
  });

  it('discover with --workers 2 writes the circuit of --workers 1 (decisions, kept edges, verified effects, metrics)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-workers-'));
    const yaml = (name: string, workers: number) => {
      const path = join(dir, `${name}.yaml`);
      writeFileSync(path, `model: mini-gpt2\ntask: { name: ioi, n: 24, seed: 1 }\nbatch_size: 8\nworkers: ${workers}\nverify: { top: 40 }\noutput: ${join(dir, `${name}.json`)}\n`);
      return path;
    };
    const one = circuitry(['discover', yaml('one', 2), '--no-report', '--workers', '1']);
    expect(one.status, one.stderr).toBe(0);
    expect(one.stdout).not.toMatch(/on \d+ workers/);
    const two = circuitry(['discover', yaml('two', 2), '--no-report']); // workers: 2 from the file
    expect(two.status, two.stderr).toBe(0);
    expect(two.stdout).toMatch(/on 2 workers/);
    const a = JSON.parse(readFileSync(join(dir, 'one.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(dir, 'two.json'), 'utf8'));
    const inGraph = (f: { edges: Record<string, { in_graph: boolean }> }) => Object.entries(f.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
    expect(inGraph(b)).toEqual(inGraph(a));
    expect(b.meta.acdc).toEqual(a.meta.acdc);
    expect(b.meta.metrics).toEqual(a.meta.metrics);
    expect(b.meta.faithfulness).toEqual(a.meta.faithfulness);
    const verified = (f: { meta: { edge_evidence: Record<string, { verified?: number }> } }) => Object.entries(f.meta.edge_evidence).map(([n, e]) => [n, e.verified]);
    expect(verified(b)).toEqual(verified(a));
    expect(b.meta.config.workers).toBeUndefined();
  });

  it('patch with --workers 2 writes the sweep of --workers 1 (activation and edge sweeps)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-workers-patch-'));
    for (const sweep of ['heads-by-pos', 'edges']) {
      const out = (w: number) => join(dir, `${sweep}-${w}.json`);
      for (const w of [1, 2]) {
        const r = circuitry(['patch', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '24', '--batch-size', '8', '--sweep', sweep, '--workers', String(w), '--out', out(w)]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.includes('on 2 workers')).toBe(w === 2);
      }
      const [a, b] = [out(1), out(2)].map((f) => JSON.parse(readFileSync(f, 'utf8')));
      expect(b.components).toEqual(a.components);
      expect(b.meta_sweep).toEqual(a.meta_sweep);
    }
  });

  it('patch --significance with --workers 2 writes the statistics of --workers 1 (every prompt evaluated by its worker)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-workers-sig-'));
    for (const sweep of ['heads', 'edges']) {
      const out = (w: number) => join(dir, `${sweep}-${w}.json`);
      for (const w of [1, 2]) {
        const r = circuitry(['patch', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '24', '--batch-size', '8', '--sweep', sweep, '--significance', '--resamples', '500', '--workers', String(w), '--out', out(w)]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.includes('on 2 workers')).toBe(w === 2);
        expect(r.stdout).toMatch(/significance: \d+ of \d+ components/);
      }
      const [a, b] = [out(1), out(2)].map((f) => JSON.parse(readFileSync(f, 'utf8')));
      expect(b.components).toEqual(a.components);
      expect(b.significance).toEqual(a.significance);
      expect(Object.values(a.components as Record<string, { significant: boolean }>).some((c) => c.significant)).toBe(true);
    }
  });

  it('trace with --workers 2 writes the maps of --workers 1, to 1e-6 (its restorations shared out)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-workers-trace-'));
    const files = [1, 2].map((w) => {
      const out = join(dir, `trace-${w}.json`);
      const r = circuitry(['trace', '--model', 'mini-gpt2', '--prompt', 'When Mary and John went to the store , John gave a drink to', '--answer', ' Mary', '--noise-positions', '1,3', '--samples', '4', '--workers', String(w), '--out', out]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.includes('on 2 workers')).toBe(w === 2);
      return JSON.parse(readFileSync(out, 'utf8')) as { clean: number; corrupted: number; maps: Record<string, { restored: number[][]; peak: unknown }> };
    });
    const [a, b] = files;
    expect(b.clean).toBe(a.clean);
    expect(b.corrupted).toBe(a.corrupted);
    expect(Object.keys(b.maps)).toEqual(Object.keys(a.maps));
    let cells = 0;
    for (const [kind, m] of Object.entries(a.maps)) {
      m.restored.forEach((row, l) =>
        row.forEach((v, pos) => {
          expect(Number.isFinite(v)).toBe(true);
          expect(Math.abs(b.maps[kind].restored[l][pos] - v)).toBeLessThanOrEqual(1e-6);
          cells++;
        }),
      );
      expect(b.maps[kind].peak).toEqual(m.peak);
    }
    expect(cells).toBeGreaterThan(100);
  });

  it('attribute with --workers 2 scores every edge as --workers 1 does, to 1e-6', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-workers-attr-'));
    const files = [1, 2].map((w) => {
      const out = join(dir, `eap-ig-${w}.json`);
      const r = circuitry(['attribute', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '24', '--batch-size', '8', '--method', 'eap-ig', '--top', '20', '--workers', String(w), '--out', out]);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(readFileSync(out, 'utf8')) as { edges: Record<string, { score: number; in_graph: boolean }> };
    });
    const [a, b] = files;
    const scale = Math.max(...Object.values(a.edges).map((e) => Math.abs(e.score)));
    for (const [name, e] of Object.entries(a.edges)) {
      expect(Math.abs(b.edges[name].score - e.score)).toBeLessThanOrEqual(1e-6 * Math.max(1, scale));
      expect(b.edges[name].in_graph).toBe(e.in_graph);
    }
  });

  it('acdc on 2 workers stopped by Ctrl-C (SIGINT) stops every worker, and --resume on 1 worker finishes the run of --workers 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-workers-acdc-'));
    const base = ['acdc', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '24', '--batch-size', '8', '--threshold', '0.02', '--metric', 'kl'];
    const full = join(dir, 'full.json');
    const one = circuitry([...base, '--workers', '1', '--out', full]);
    expect(one.status, one.stderr).toBe(0);
    const out = join(dir, 'resumed.json');
    const checkpoint = `${out}.checkpoint.json`;
    const child = spawn(process.execPath, [CLI, ...base, '--workers', '2', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CIRCUITRY_BACKEND: 'wasm' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    // interrupt once the first destination's checkpoint exists
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (existsSync(checkpoint)) {
          clearInterval(t);
          child.kill('SIGINT');
          resolve();
        }
      }, 20);
      void exited.then(() => {
        clearInterval(t);
        reject(new Error(`finished before it could be interrupted: ${stderr}`));
      });
    });
    const sent = performance.now();
    expect(await exited).toBe(130);
    // a measure for the lead: Ctrl-C to exit with two workers
    console.log(`[scale] SIGINT with 2 workers answered in ${((performance.now() - sent) / 1000).toFixed(2)} s`);
    expect(stderr).toMatch(/--resume/);
    expect(existsSync(out)).toBe(false);
    const resumed = circuitry([...base, '--workers', '1', '--out', out, '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const steps = (f: string) => JSON.parse(readFileSync(f, 'utf8')).meta.acdc.steps;
    expect(steps(out)).toEqual(steps(full));
    expect(existsSync(checkpoint)).toBe(false);
  });
});
