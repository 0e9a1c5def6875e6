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
