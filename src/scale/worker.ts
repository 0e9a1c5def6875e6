import { existsSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CircuitryError } from '../errors.js';
import { initBackend } from '../backend/index.js';
import { CircuitGraph } from '../graph/graph.js';
import { modelFromTensors } from '../model/arch/index.js';
import { loadModel } from '../model/load.js';
import { readCheckpointFolder } from '../model/checkpoint.js';
import { parseSafetensors } from '../model/safetensors-bytes.js';
import type { Transformer } from '../model/transformer.js';
import { Patcher } from '../patching/patcher.js';
import { attributeEdges, attributeEdgesAsync } from '../attribution/index.js';
import { activationSweepChunks, planSweep } from '../patching/sweeps.js';
import { causalTrace } from '../interventions/causal-tracing.js';
import { evaluateTargets } from '../interventions/sweep-significance.js';
import type { ModelRef, ShardSpec, SparseMask, WorkerReply, WorkerTask } from './protocol.js';

/**
 * A pool worker: one tfjs instance, one model (built from the shared weights), and a Patcher per
 * shard it was given. Errors of the work itself are returned (so the parent can tell them from a
 * worker that died) and raised again in the parent.
 */

let model: { key: string; model: Transformer } | undefined;
const patchers = new Map<string, Patcher>();

async function modelOf(ref: ModelRef, backend: string): Promise<Transformer> {
  if (model?.key === ref.key) return model.model;
  await initBackend(backend);
  for (const p of patchers.values()) p.dispose();
  patchers.clear();
  model?.model.dispose();
  model = undefined;
  let built: Transformer;
  if (ref.kind === 'shared') {
    // the shared buffer; once the parent released it, the checkpoint folder, a tensor at a time
    if (!ref.bytes && ref.dir === undefined) throw new Error(`model ${ref.key}: neither shared weights nor a folder to read them from`);
    const tensors = ref.bytes ? parseSafetensors(new Uint8Array(ref.bytes), ref.source, { views: true }) : readCheckpointFolder(ref.dir!, { lazy: true }).tensors;
    built = modelFromTensors(ref.config, tensors, ref.source);
  }
  else {
    const loaded = await loadModel(ref.name);
    if (ref.hash !== undefined && loaded.source.hash !== ref.hash) {
      loaded.model.dispose();
      throw new CircuitryError(`model '${ref.name}' on ${hostname()} has weights hash ${loaded.source.hash.slice(0, 16)}, but the coordinator's has ${ref.hash.slice(0, 16)}: give this worker the same weights (the same zoo version, hub revision or files)`);
    }
    built = loaded.model;
  }
  model = { key: ref.key, model: built };
  return built;
}

async function patcherOf(task: { backend: string; model: ModelRef; shard: ShardSpec }): Promise<Patcher> {
  const m = await modelOf(task.model, task.backend);
  let p = patchers.get(task.shard.key);
  if (!p) {
    const s = task.shard;
    p = new Patcher(m, new CircuitGraph(s.graph), s.data, { metric: s.metric, direction: s.direction, ablation: s.ablation, batchSize: s.batchSize, stackBudget: s.stackBudget, maxRows: s.maxRows });
    patchers.set(s.key, p);
  }
  return p;
}

function denseMask(p: Patcher, m: SparseMask): Float32Array {
  const out = p.fullMask();
  m.index.forEach((i, j) => (out[i] = m.value[j]));
  return out;
}

/**
 * Test hooks: with CIRCUITRY_TEST_WORKER_DIES=FILE the first evaluate task of the second shard
 * ends its thread (once: FILE marks it done); with CIRCUITRY_TEST_WORKER_DIES=always, every time.
 */
function maybeDie(task: WorkerTask): void {
  const marker = process.env.CIRCUITRY_TEST_WORKER_DIES;
  if (!marker || task.kind !== 'evaluate' || !task.shard.key.endsWith('#1')) return;
  if (marker !== 'always') {
    if (existsSync(marker)) return;
    writeFileSync(marker, 'died once\n');
  }
  process.exit(9);
}

export async function handleTask(task: WorkerTask): Promise<WorkerReply> {
  try {
    maybeDie(task);
    switch (task.kind) {
      case 'open': {
        const p = await patcherOf(task);
        return { ok: true, sizes: p.chunkSizes, masksPerPass: p.masksPerPass, ...p.chunkMetrics() };
      }
      case 'evaluate': {
        const p = await patcherOf(task);
        if (task.base) p.setBaseMask(denseMask(p, task.base.mask), task.base.key);
        else if (p.baseKey !== undefined) p.setBaseMask(undefined);
        const before = p.forwardPasses;
        const beforeBase = p.basePasses;
        const values = await p.evaluateChunks(task.masks.map((m) => denseMask(p, m)));
        return { ok: true, values, passes: p.forwardPasses - before, basePasses: p.basePasses - beforeBase };
      }
      case 'attribute': {
        const p = await patcherOf(task);
        const r = await attributeEdgesAsync({ patcher: p }, task.method, task.steps === undefined ? {} : { steps: task.steps });
        return { ok: true, scores: r.scores, passes: r.forwardPasses };
      }
      case 'sweep': {
        const p = await patcherOf(task);
        let seqLen = 0;
        p.forEachChunk(({ run }) => (seqLen = run.tokens.shape[1]));
        const plan = planSweep(task.sweep, p.engine.model.cfg, seqLen, task.positionLabels);
        const r = activationSweepChunks(p, plan);
        return { ok: true, values: r.chunks, sizes: r.sizes, passes: r.forwardPasses, cachePasses: r.cachePasses };
      }
      case 'attribute-data': {
        const m = await modelOf(task.model, task.backend);
        const { graph: _graph, ...r } = attributeEdges({ model: m, graph: new CircuitGraph(task.graph), data: task.data }, task.method, task.options);
        return { ok: true, attribution: r };
      }
      case 'per-example': {
        const p = await patcherOf(task);
        const r = evaluateTargets(p, task.targets);
        return { ok: true, perExample: r.perExample, base: r.base, passes: r.forwardPasses, cachePasses: r.cachePasses };
      }
      case 'trace': {
        const m = await modelOf(task.model, task.backend);
        return { ok: true, trace: causalTrace(m, task.tokens, task.answer, task.options) };
      }
      case 'close': {
        patchers.get(task.shard)?.dispose();
        patchers.delete(task.shard);
        return { ok: true };
      }
      case 'noop':
        return { ok: true };
    }
  } catch (e) {
    const err = e as Error;
    // out of memory: a fresh worker (a fresh heap) retries the shard, as when the thread is killed
    if (/out of memory|allocation failed|Array buffer allocation/iu.test(String(err.message))) process.exit(137);
    return { ok: false, name: err.name ?? 'Error', message: err.message ?? String(e) };
  }
}
