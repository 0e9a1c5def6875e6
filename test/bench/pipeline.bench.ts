import { loadModel, type LoadedModel } from '../../src/model/load.js';
import { zooModels } from '../../src/zoo/index.js';
import '../../src/zoo/builtin.js';
import { CircuitGraph } from '../../src/graph/graph.js';
import { Patcher } from '../../src/patching/patcher.js';
import { runAcdc } from '../../src/discovery/acdc.js';
import { runPipeline } from '../../src/discovery/pipeline.js';
import { resolvePipelineConfig } from '../../src/discovery/config.js';
import { resolveDataset } from '../../src/discovery/data.js';
import { circuitMetrics, faithfulnessCurve } from '../../src/discovery/evaluate.js';
import { fmt } from './timing.js';

/** The pipeline's wall time as a fraction of plain ACDC's on the same data and τ, with both CPRs. */
export async function benchPipeline(log: (line: string) => void): Promise<void> {
  // the largest trained model (the bar asks for ~1,000 edges or more)
  const trained = zooModels().find((m) => m.name === 'mini-gpt2-l4h8') ?? zooModels().find((m) => m.kind === 'trained');
  if (!trained) {
    log('no trained zoo model registered: skipped');
    return;
  }
  const loaded = await loadModel(trained.name);
  // every task of the model by default; `CIRCUITRY_BENCH_TASKS=ioi` for one
  const tasks = process.env.CIRCUITRY_BENCH_TASKS?.split(',') ?? trained.tasks;
  for (const task of tasks) await benchTask(log, loaded, task);
  loaded.model.dispose();
}

async function benchTask(log: (line: string) => void, loaded: LoadedModel, task: string): Promise<void> {
  const trained = loaded.zoo!;
  const cfg = resolvePipelineConfig({ model: trained.name, task: { name: task, n: 32, seed: 7 }, output: '/tmp/circuitry-bench/pipeline.json' });
  const data = resolveDataset(loaded, { task: cfg.task });
  const { model } = loaded;
  const graph = new CircuitGraph({ nLayers: model.cfg.nLayers, nHeads: model.cfg.nHeads, hasMlp: !model.cfg.attnOnly, qkv: true });
  log(`${trained.name}: ${graph.nEdges} edges, task ${task}, ${data.clean.length} pairs × ${data.seqLen} tokens`);

  const t0 = performance.now();
  const result = await runPipeline(cfg, loaded, data);
  const pipelineMs = performance.now() - t0;
  const tau = result.file!.meta!.acdc!.tau;

  const patcher = new Patcher(model, graph, data, { metric: cfg.metric, batchSize: cfg.batchSize });
  const t1 = performance.now();
  const acdc = await runAcdc(patcher, { tau, order: cfg.prune.order, faith: cfg.prune.faith });
  const acdcMs = performance.now() - t1;

  // each method's curve ranks edges by its own evidence: ACDC by |delta|, the pipeline by its attribution scores
  const acdcScores = new Float32Array(graph.denseSize);
  for (const s of acdc.steps) acdcScores[graph.edge(s.edge).index] = Math.abs(s.delta) + (s.removed ? 0 : 1e6);
  const acdcCurve = faithfulnessCurve(patcher, acdcScores);
  const acdcCircuit = circuitMetrics(patcher, acdc.mask);
  const pm = result.file!.meta!;
  log(`plain ACDC: ${fmt(acdcMs / 1000, 1)} s, ${acdc.forwardPasses} forward passes, ${acdc.kept.length} edges kept, normalized ${fmt(acdcCircuit.normalized, 3)}, CPR ${fmt(acdcCurve.cpr!, 3)}`);
  log(`pipeline:   ${fmt(pipelineMs / 1000, 1)} s, ${Object.values(result.file!.edges).filter((e) => e.in_graph).length} edges kept, normalized ${fmt(pm.metrics!.normalized!, 3)}, CPR ${fmt(pm.faithfulness!.cpr!, 3)}`);
  log(`time ratio pipeline/ACDC: ${fmt(pipelineMs / acdcMs)}×  (bar ≤ 0.2×); CPR difference ${fmt(pm.faithfulness!.cpr! - acdcCurve.cpr!, 3)} (bar ≥ −0.02)`);
  patcher.dispose();
}
