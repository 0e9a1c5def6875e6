import { describe, it, expect, beforeAll } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { loadModel } from '../src/model/load.js';
import { readPipelineConfig } from '../src/discovery/config.js';
import { runPipeline } from '../src/discovery/pipeline.js';
import { resolveDataset } from '../src/discovery/data.js';
import { zooModels } from '../src/zoo/index.js';
import '../src/zoo/builtin.js';

const planted = zooModels().filter((m) => m.kind === 'planted');

describe('the discovery pipeline on planted circuits, default settings', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('has planted models to test', () => expect(planted.length).toBeGreaterThanOrEqual(4));

  for (const zoo of planted) {
    it(`${zoo.name}: returns exactly the ground-truth edge set, ROC AUC ≥ 0.99`, async () => {
      const cfg = readPipelineConfig(`pipelines/${zoo.name}.yaml`);
      const loaded = await loadModel(cfg.model);
      try {
        const data = resolveDataset(loaded, { task: cfg.task });
        const { file } = await runPipeline(cfg, loaded, data);
        const found = Object.entries(file!.edges).filter(([, e]) => e.in_graph).map(([n]) => n).sort();
        expect(found).toEqual([...zoo.groundTruth![cfg.task!.name]].sort());
        expect(file!.meta!.ground_truth!.roc_auc).toBeGreaterThanOrEqual(0.99);
        expect(file!.meta!.metrics!.normalized).toBeGreaterThan(0.9);
      } finally {
        loaded.model.dispose();
      }
    });
  }
});

describe('pipeline interruption', () => {
  it('a run stopped after its first ACDC node and resumed writes the same circuit as an uninterrupted run', async () => {
    await initBackend('wasm');
    const { mkdtempSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { resolvePipelineConfig } = await import('../src/discovery/config.js');
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-resume-'));
    // a learned circuit: ACDC needs several passes, so there is a pass boundary to stop at
    const cfg = resolvePipelineConfig({ model: 'mini-gpt2', task: { name: 'ioi', n: 8, seed: 3 }, output: join(dir, 'c.json') });
    const loaded = await loadModel(cfg.model);
    try {
      const data = resolveDataset(loaded, { task: cfg.task });
      const strip = (f: unknown) => JSON.parse(JSON.stringify(f, (k, v) => (k === 'timings' || k === 'created' ? undefined : v)));
      const full = await runPipeline(cfg, loaded, data);
      // no verify.top given: a twentieth of the edges, at least 100 (mini-gpt2 has 262)
      expect(full.file!.meta!.pipeline).toMatchObject({ verify: { top: 100, candidates: 100 } });
      let polls = 0;
      const stopped = await runPipeline(cfg, loaded, data, { shouldStop: () => ++polls >= 1 });
      expect(stopped.complete).toBe(false);
      expect(existsSync(stopped.checkpoint)).toBe(true);
      const resumed = await runPipeline(cfg, loaded, data, { resume: true });
      expect(resumed.complete).toBe(true);
      expect(strip(resumed.file)).toEqual(strip(full.file));
      expect(existsSync(stopped.checkpoint)).toBe(false);
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('verify.top by default', () => {
  it('is a twentieth of the graph\'s edges, from 100 to 400', async () => {
    const { verifyTop } = await import('../src/discovery/config.js');
    expect([262, 1519, 4000, 32491].map(verifyTop)).toEqual([100, 100, 200, 400]);
  });
});
