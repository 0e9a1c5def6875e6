import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { resolveDataset } from '../src/discovery/data.js';
import { circuitMetrics, maskOf } from '../src/discovery/evaluate.js';
import { LiveEvaluator } from '../src/discovery/live.js';
import { CircuitryError } from '../src/errors.js';
import { readCircuitFile } from '../src/graph/circuit-json.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { circuitToJson, createCircuit } from '../src/graph/index.js';
import { loadModel, modelFromTensors, type LoadedModel } from '../src/model/load.js';
import { parseSafetensors, safetensorsBytes, type HostTensor } from '../src/model/safetensors-bytes.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { Patcher } from '../src/patching/patcher.js';
import { buildLivePayload } from '../src/report/live.js';
import { LIVE_IDS } from '../src/report/live-types.js';

/** The Node side of the live report: bytes in and out, the evaluator against evaluate's function, the payload, the refusals. */

const TASK = { name: 'ioi', n: 8, seed: 3 };
const MINI = join(process.cwd(), 'src', 'zoo', 'trained', 'mini-gpt2');

describe('safetensors bytes', () => {
  it('round-trips float32 tensors and parses a file the same as the file reader', () => {
    const tensors = new Map<string, HostTensor>([
      ['b', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-8, -7]) }],
      ['a.weight', { shape: [1], data: Float32Array.from([42]) }],
    ]);
    const back = parseSafetensors(safetensorsBytes(tensors, { format: 'pt' }), 'mem');
    expect([...back.keys()].sort()).toEqual(['a.weight', 'b']);
    expect(back.get('b')).toEqual(tensors.get('b'));
    const file = readSafetensors(join(MINI, 'model.safetensors'));
    const again = parseSafetensors(safetensorsBytes(file), 'mem');
    for (const [k, t] of file) expect(again.get(k)).toEqual(t);
  });

  it('names the source of truncated or corrupt bytes', () => {
    const bytes = safetensorsBytes(new Map([['x', { shape: [4], data: new Float32Array(4) }]]));
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 4), 'the embedded weights')).toThrow(/the embedded weights: tensor 'x' has data offsets/);
    expect(() => parseSafetensors(bytes.subarray(0, 5), 'the embedded weights')).toThrow(/the embedded weights: not a safetensors file/);
  });
});

describe('live evaluation in Node', () => {
  let dir: string;
  let loaded: LoadedModel;
  let graph: CircuitGraph;
  let circuitPath: string;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('mini-gpt2');
    graph = new CircuitGraph({ nLayers: 3, nHeads: 4, hasMlp: true, qkv: true });
    dir = mkdtempSync(join(tmpdir(), 'circuitry-live-node-'));
    const inGraph = graph.denseEdgeArray(0);
    graph.edges.forEach((e, i) => (inGraph[e.index] = i % 3 === 0 ? 1 : 0));
    circuitPath = join(dir, 'c.json');
    writeFileSync(circuitPath, JSON.stringify(circuitToJson(createCircuit(graph, { inGraph, dModel: 64 }), { model: { name: 'mini-gpt2', hash: 'x' }, config: { task: TASK } })));
  });

  afterAll(() => {
    loaded?.model.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('LiveEvaluator gives circuitMetrics’ numbers, and per-prompt values that average to them', () => {
    const data = resolveDataset(loaded, { task: { ...TASK, options: {} } });
    const live = new LiveEvaluator(loaded.model, graph, data);
    const patcher = new Patcher(loaded.model, graph, data, { metric: 'logit-diff', batchSize: 32 });
    try {
      const sets = [graph.edges.filter((_, i) => i % 3 === 0).map((e) => e.name), graph.edges.map((e) => e.name), [], ['input->logits', 'm2->logits']];
      for (const edges of sets) {
        const ref = circuitMetrics(patcher, maskOf(patcher, edges));
        const got = live.evaluate(edges);
        expect(Math.abs(got.metric - ref.circuit)).toBeLessThan(1e-5);
        expect(Math.abs(got.normalized - ref.normalized)).toBeLessThan(1e-5);
        expect(got.perPrompt.metric).toHaveLength(TASK.n);
        // logit-diff is the metric here: the two per-prompt series are the same numbers
        expect(got.perPrompt.logitDiff).toEqual(got.perPrompt.metric);
      }
      expect(live.full).toBe(patcher.cleanMetric);
      const fullMean = live.fullPerPrompt.metric.reduce((a, b) => a + b, 0) / TASK.n;
      expect(Math.abs(fullMean - live.full)).toBeLessThan(1e-5);
      const emptyMean = live.emptyPerPrompt.metric.reduce((a, b) => a + b, 0) / TASK.n;
      expect(Math.abs(emptyMean - live.empty)).toBeLessThan(1e-5);
      expect(() => live.evaluate(['a0.h0->nowhere'])).toThrow(CircuitryError);
    } finally {
      live.dispose();
      patcher.dispose();
    }
  });

  it('the payload carries the weights (same tensors), the data evaluate uses, and valid wasm binaries', async () => {
    const { file, circuit } = readCircuitFile(circuitPath);
    const { data, blobs } = await buildLivePayload([{ name: 'c', file, circuit, source: circuitPath }]);
    expect(data.metric).toBe('logit-diff');
    expect(data.batchSize).toBe(32);
    expect(data.graph).toEqual(graph.shape);
    expect(data.circuits[0].discovered).toHaveLength(Math.ceil(graph.nEdges / 3));
    const ds = resolveDataset(loaded, { task: { ...TASK, options: {} } });
    expect(data.datasets[0].clean).toEqual(ds.clean);
    expect(data.datasets[0].answers).toEqual(ds.answers);
    expect(data.datasets[0].text).toHaveLength(TASK.n);
    const tensors = parseSafetensors(Buffer.from(blobs[LIVE_IDS.weights], 'base64'), 'payload');
    const file0 = readSafetensors(join(MINI, 'model.safetensors'));
    for (const [k, t] of file0) expect(tensors.get(k)).toEqual(t);
    const model = modelFromTensors(data.config, tensors, 'payload');
    expect(model.cfg).toEqual(loaded.model.cfg);
    model.dispose();
    for (const id of [LIVE_IDS.wasmPlain, LIVE_IDS.wasmSimd, LIVE_IDS.simdLoops]) expect(WebAssembly.validate(Buffer.from(blobs[id], 'base64'))).toBe(true);
  });

  it('refuses too big a model, a file without its model or data, and circuits of two models', async () => {
    const { file, circuit } = readCircuitFile(circuitPath);
    const input = { name: 'c', file, circuit, source: circuitPath };
    await expect(buildLivePayload([input], { maxMb: 0.25 })).rejects.toThrow(/model 'mini-gpt2' has 0\.69 MB of weights, above the live report's limit of 0\.25 MB/);
    await expect(buildLivePayload([{ ...input, file: { ...file, meta: { config: { task: TASK } } } }])).rejects.toThrow(/does not name its model \(meta\.model\.name\)/);
    await expect(buildLivePayload([{ ...input, file: { ...file, meta: { model: { name: 'mini-gpt2', hash: 'x' } } } }])).rejects.toThrow(/does not record its data/);
    const other = { ...input, source: 'other.json', file: { ...file, meta: { ...file.meta, model: { name: 'planted-induction', hash: 'y' } } } };
    await expect(buildLivePayload([input, other])).rejects.toThrow(/every circuit must come from one model/);
    await expect(buildLivePayload([input], { metric: 'nope' })).rejects.toThrow(CircuitryError);
  });
});
