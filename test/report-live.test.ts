import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { modelFromTensors } from '../src/model/arch/index.js';
import { parseSafetensors, safetensorsBytes, type HostTensor } from '../src/model/safetensors-bytes.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { Patcher } from '../src/patching/patcher.js';
import { buildLivePayload } from '../src/report/live.js';
import { LIVE_IDS } from '../src/report/live-types.js';
import { zooModel } from '../src/zoo/index.js';
import { writeSharded } from './helpers/io-files.js';

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

  const writeTemp = (name: string, value: unknown): string => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(value));
    return path;
  };

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

  it('takes weights built in code (planted models) and sharded folders, limit and all', async () => {
    const built0 = zooModel('planted-induction')!.build!();
    const cfg0 = built0.config as { n_layer: number; n_head: number; n_embd: number };
    const planted = new CircuitGraph({ nLayers: cfg0.n_layer, nHeads: cfg0.n_head, hasMlp: true, qkv: true });
    const pFile = circuitToJson(createCircuit(planted, { inGraph: planted.denseEdgeArray(1), dModel: cfg0.n_embd }), { model: { name: 'planted-induction', hash: 'x' }, config: { task: { name: 'induction', n: 4, seed: 0 } } });
    const pPath = join(dir, 'planted.json');
    writeFileSync(pPath, JSON.stringify(pFile));
    const p = readCircuitFile(pPath);
    const built = built0;
    let floats = 0;
    for (const t of built.tensors.values()) floats += t.data.length;
    const { data: pd, blobs: pb } = await buildLivePayload([{ name: 'p', ...p, source: pPath }]);
    expect(pd.weightBytes).toBeGreaterThan(4 * floats); // plus the header
    const pt = parseSafetensors(Buffer.from(pb[LIVE_IDS.weights], 'base64'), 'payload');
    for (const [k, t] of built.tensors) expect(pt.get(k)).toEqual(t);

    // a sharded folder: the size is the shards', the embedded file one float32 file of the same tensors
    const folder = join(dir, 'sharded');
    mkdirSync(folder);
    copyFileSync(join(MINI, 'config.json'), join(folder, 'config.json'));
    const tensors = readSafetensors(join(MINI, 'model.safetensors'));
    writeSharded(folder, tensors, 3);
    const rows = resolveDataset(loaded, { task: { ...TASK, options: {} } });
    const jsonl = join(dir, 'pairs.jsonl');
    writeFileSync(jsonl, rows.clean.map((c, i) => JSON.stringify({ clean: c, corrupted: rows.corrupted[i], answer: rows.answers[i], wrong: rows.wrongs[i] })).join('\n'));
    const sFile = circuitToJson(createCircuit(graph, { inGraph: graph.denseEdgeArray(1), dModel: 64 }), { model: { name: folder, hash: 'x' }, config: { dataset: jsonl } });
    const sPath = join(dir, 'sharded.json');
    writeFileSync(sPath, JSON.stringify(sFile));
    const s = readCircuitFile(sPath);
    const input = { name: 's', ...s, source: sPath };
    await expect(buildLivePayload([input], { maxMb: 0.5 })).rejects.toThrow(/has 0\.69 MB of weights, above the live report's limit of 0\.5 MB/);
    const { data: sd, blobs: sb } = await buildLivePayload([input]);
    const st = parseSafetensors(Buffer.from(sb[LIVE_IDS.weights], 'base64'), 'payload');
    for (const [k, t] of tensors) expect(st.get(k)).toEqual(t);
    expect(sd.datasets[0].clean).toEqual(rows.clean);
  });

  it('refuses too big a model, a file without its model or data, and circuits of two models', async () => {
    const { file, circuit } = readCircuitFile(circuitPath);
    const input = { name: 'c', file, circuit, source: circuitPath };
    await expect(buildLivePayload([input], { maxMb: 0.25 })).rejects.toThrow(/model 'mini-gpt2' has 0\.69 MB of weights, above the live report's limit of 0\.25 MB/);
    await expect(buildLivePayload([{ ...input, file: { ...file, meta: { config: { task: TASK } } } }])).rejects.toThrow(/does not name its model \(meta\.model\.name\)/);
    await expect(buildLivePayload([{ ...input, file: { ...file, meta: { model: { name: 'mini-gpt2', hash: 'x' } } } }])).rejects.toThrow(/does not record its data/);
    const other = { ...input, source: 'other.json', file: { ...file, meta: { ...file.meta, model: { name: 'planted-induction', hash: 'y' } } } };
    await expect(buildLivePayload([input, other])).rejects.toThrow(/every circuit must come from one model/);
    const small = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
    const misfit = circuitToJson(createCircuit(small, { dModel: 64 }), { model: { name: 'mini-gpt2', hash: 'x' }, config: { task: TASK } });
    await expect(buildLivePayload([{ ...input, ...readCircuitFile(writeTemp('misfit.json', misfit)), source: 'misfit.json' }])).rejects.toThrow(/misfit\.json: the graph \(2 layers, 4 heads\) does not fit the model \(3 layers, 4 heads\) \('mini-gpt2'\)/);
    await expect(buildLivePayload([input], { metric: 'nope' })).rejects.toThrow(CircuitryError);
  });
});
