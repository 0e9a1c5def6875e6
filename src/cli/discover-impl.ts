import { existsSync, readFileSync } from 'node:fs';
import { initBackend, backendName } from '../backend/index.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { graphForModel } from '../graph/graph.js';
import { circuitToJson, createCircuit, readCircuitFile, writeCircuitFile } from '../graph/index.js';
import type { CircuitMeta } from '../graph/circuit-types.js';
import { Patcher } from '../patching/patcher.js';
import { createProgress, type Progress } from '../patching/progress.js';
import { parseMetricName } from '../metrics/index.js';
import { runAcdc, type AcdcFaith } from '../discovery/acdc.js';
import { parseAcdcOrder } from '../discovery/order.js';
import { readPipelineConfig, type PipelineConfig } from '../discovery/config.js';
import { runPipeline } from '../discovery/pipeline.js';
import { resolveDataset } from '../discovery/data.js';
import { circuitMetrics, faithfulnessCurve, maskOf, precisionRecall, rocAuc } from '../discovery/evaluate.js';
import { datasetHash, type TaskDataset } from '../tasks/index.js';
import { VERSION } from '../version.js';
import { CircuitryError } from '../errors.js';

/** Ctrl-C sets a flag the long loops poll; a second Ctrl-C exits at once. */
function interruptFlag(): { stop: () => boolean; dispose: () => void } {
  let stopped = false;
  const handler = () => {
    if (stopped) process.exit(130);
    stopped = true;
    console.error('\ninterrupted: finishing the current node and writing a checkpoint (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', handler);
  return { stop: () => stopped, dispose: () => process.off('SIGINT', handler) };
}

/** Progress bars per stage, drawn on stderr. */
function stageProgress(): { onProgress: (stage: string, done: number, total: number) => void; stop: () => void } {
  const bars = new Map<string, Progress>();
  return {
    onProgress(stage, done, total) {
      let bar = bars.get(stage);
      if (!bar) {
        bars.forEach((b) => b.stop());
        bar = createProgress(stage);
        bars.set(stage, bar);
      }
      bar.update(done, total);
    },
    stop: () => bars.forEach((b) => b.stop()),
  };
}

async function writeReportFor(graphPath: string, reportPath: string): Promise<void> {
  const { writeReport } = await import('../report/files.js');
  writeReport(graphPath, reportPath);
}

/** Runs one pipeline file; returns the written graph path, or undefined when interrupted. */
export async function runPipelineFile(cfg: PipelineConfig, opts: { resume: boolean; report: boolean; loaded?: LoadedModel }): Promise<string | undefined> {
  const loaded = opts.loaded ?? (await loadModel(cfg.model, { log: (m) => console.error(m) }));
  const data = resolveDataset(loaded, { dataset: cfg.dataset, task: cfg.task });
  console.log(`${cfg.file ?? 'pipeline'}: model ${cfg.model}, ${data.name} (${data.clean.length} pairs × ${data.seqLen} tokens), backend ${backendName()}`);
  const interrupt = interruptFlag();
  const progress = stageProgress();
  try {
    const result = await runPipeline(cfg, loaded, data, { log: (m) => console.log(`  ${m}`), onProgress: progress.onProgress, shouldStop: interrupt.stop, resume: opts.resume });
    progress.stop();
    if (!result.complete || !result.file) {
      console.error(`stopped; the checkpoint is ${result.checkpoint}\nresume with: circuitry discover ${cfg.file ?? 'PIPELINE.yaml'} --resume`);
      return undefined;
    }
    writeCircuitFile(cfg.output.graph, result.file);
    const m = result.file.meta?.metrics;
    const kept = Object.values(result.file.edges).filter((e) => e.in_graph).length;
    console.log(`  circuit: ${kept} edges; normalized ${cfg.metric} ${m?.normalized?.toFixed(3)}; CPR ${result.file.meta?.faithfulness?.cpr?.toFixed(3) ?? '-'}, CMD ${result.file.meta?.faithfulness?.cmd?.toFixed(3) ?? '-'}`);
    const gt = result.file.meta?.ground_truth;
    if (gt) console.log(`  ground truth: ROC AUC ${gt.roc_auc?.toFixed(3)}, precision ${gt.precision?.toFixed(3)}, recall ${gt.recall?.toFixed(3)}`);
    console.log(`  wrote ${cfg.output.graph}`);
    if (opts.report) {
      await writeReportFor(cfg.output.graph, cfg.output.report);
      console.log(`  wrote ${cfg.output.report}`);
    }
    return cfg.output.graph;
  } finally {
    progress.stop();
    interrupt.dispose();
    if (!opts.loaded) loaded.model.dispose();
  }
}

export async function discoverCli(args: { pipeline: string; resume: boolean; report: boolean; backend?: string }): Promise<number> {
  const cfg = readPipelineConfig(args.pipeline);
  await initBackend(args.backend);
  const out = await runPipelineFile(cfg, { resume: args.resume, report: args.report });
  return out ? 0 : 130;
}

function dataSpec(args: { dataset?: string; task?: string; n: number; seed: number }) {
  return args.dataset ? { dataset: args.dataset } : { task: { name: args.task!, n: args.n, seed: args.seed } };
}

export async function acdcCli(args: {
  model: string; dataset?: string; task?: string; n: number; seed: number; metric: string; threshold: number; order: string; faith?: string;
  batchSize: number; checkpoint?: string; resume: boolean; out: string; backend?: string;
}): Promise<number> {
  const metric = parseMetricName(args.metric);
  const order = parseAcdcOrder(args.order);
  if (args.faith !== undefined && !['kl', 'diff', 'abs-diff'].includes(args.faith)) throw new CircuitryError(`--faith: expected kl, diff or abs-diff, got '${args.faith}'`);
  if (!(args.threshold >= 0)) throw new CircuitryError(`--threshold: expected a number ≥ 0, got ${args.threshold}`);
  await initBackend(args.backend);
  const loaded = await loadModel(args.model, { log: (m) => console.error(m) });
  const { model } = loaded;
  const data = resolveDataset(loaded, dataSpec(args));
  const graph = graphForModel(model.cfg);
  console.log(`acdc: model ${args.model}, ${data.clean.length} pairs, ${graph.nEdges} edges, τ ${args.threshold}, ${metric}, order ${order}, backend ${backendName()}`);
  const patcher = new Patcher(model, graph, data, { metric, batchSize: args.batchSize });
  const interrupt = interruptFlag();
  const progress = stageProgress();
  const t0 = performance.now();
  try {
    const result = await runAcdc(patcher, {
      tau: args.threshold,
      order,
      faith: args.faith as AcdcFaith | undefined,
      checkpoint: args.checkpoint ?? `${args.out}.checkpoint.json`,
      resume: args.resume,
      shouldStop: interrupt.stop,
      onProgress: (done, total) => progress.onProgress('acdc', done, total),
    });
    progress.stop();
    if (!result.complete) {
      console.error(`stopped; resume with the same command and --resume`);
      return 130;
    }
    const evidence: NonNullable<CircuitMeta['edge_evidence']> = {};
    const scores = new Float32Array(graph.denseSize).fill(NaN);
    for (const s of result.steps) {
      evidence[s.edge] = { acdc_delta: s.delta, acdc_tau: Math.max(0, s.delta) };
      scores[graph.edge(s.edge).index] = s.delta;
    }
    const metrics = circuitMetrics(patcher, result.mask);
    const meta: CircuitMeta = {
      tool: { name: 'circuitry', version: VERSION },
      created: new Date().toISOString(),
      backend: backendName(),
      model: { name: loaded.name, hash: loaded.source.hash },
      dataset: datasetMeta(data),
      task: data.name,
      metric,
      method: 'acdc',
      direction: 'noise',
      timings: { prune: (performance.now() - t0) / 1000 },
      metrics: { clean: patcher.cleanMetric, corrupted: patcher.corruptedMetric, ...metrics },
      edge_evidence: evidence,
      acdc: { tau: args.threshold, order, metric: args.faith ?? (metric === 'kl' ? 'kl' : 'diff'), steps: result.steps },
    };
    writeCircuitFile(args.out, circuitToJson(createCircuit(graph, { scores, inGraph: result.mask, dModel: model.cfg.dModel }), meta));
    console.log(`kept ${result.kept.length} of ${graph.nEdges} edges in ${result.forwardPasses} forward passes (${((performance.now() - t0) / 1000).toFixed(1)} s); wrote ${args.out}`);
    return 0;
  } finally {
    progress.stop();
    interrupt.dispose();
    patcher.dispose();
    model.dispose();
  }
}

function datasetMeta(data: TaskDataset): NonNullable<CircuitMeta['dataset']> {
  return { name: data.name, hash: datasetHash(data).slice(0, 16), n_examples: data.clean.length, seq_len: data.seqLen };
}

/** Edge names of a ground-truth file: a circuit JSON (its in-graph edges) or one name per line. */
function readGroundTruth(path: string): string[] {
  if (!existsSync(path)) throw new CircuitryError(`--ground-truth: ${path} does not exist`);
  const text = readFileSync(path, 'utf8');
  if (text.trimStart().startsWith('{')) {
    const { file } = readCircuitFile(path);
    return Object.entries(file.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

export async function evaluateCli(args: {
  circuit: string; model?: string; dataset?: string; task?: string; n: number; seed: number; metric: string; groundTruth?: string; batchSize: number; json: boolean; backend?: string;
}): Promise<number> {
  const { file, circuit } = readCircuitFile(args.circuit);
  const metric = parseMetricName(args.metric);
  const cfgMeta = (file.meta?.config ?? {}) as Partial<PipelineConfig>;
  const modelName = args.model ?? file.meta?.model?.name;
  if (!modelName) throw new CircuitryError(`${args.circuit}: the file does not name its model (meta.model.name); pass --model`);
  const spec = args.dataset || args.task ? dataSpec(args) : { dataset: cfgMeta.dataset, task: cfgMeta.task };
  if (!spec.dataset && !spec.task) throw new CircuitryError(`${args.circuit}: the file does not record its data (meta.config); pass --dataset or --task`);
  await initBackend(args.backend);
  const loaded = await loadModel(modelName, { log: (m) => console.error(m) });
  const data = resolveDataset(loaded, spec);
  const graph = circuit.graph;
  const patcher = new Patcher(loaded.model, graph, data, { metric, batchSize: args.batchSize });
  try {
    const kept = Object.entries(file.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
    const metrics = circuitMetrics(patcher, maskOf(patcher, kept));
    const scores = Float32Array.from(circuit.scores, (s) => (Number.isFinite(s) ? s : 0));
    const curve = faithfulnessCurve(patcher, scores);
    const truthNames = args.groundTruth ? readGroundTruth(args.groundTruth) : loaded.zoo?.groundTruth?.[data.name] ? [...loaded.zoo.groundTruth[data.name]] : undefined;
    let gt: Record<string, number> | undefined;
    if (truthNames) {
      const truth = new Set(truthNames);
      for (const n of truth) graph.edge(n);
      const rank = graph.edges.map((e) => (circuit.inGraph[e.index] ? 2 : 0) + Math.min(1, Math.abs(Number.isFinite(circuit.scores[e.index]) ? circuit.scores[e.index] : 0)));
      gt = { roc_auc: rocAuc(rank, graph.edges.map((e) => truth.has(e.name))), ...precisionRecall(kept, truth) };
    }
    const out = { file: args.circuit, model: modelName, backend: backendName(), n_edges: kept.length, metric, ...metrics, faithfulness: curve, ground_truth: gt };
    if (args.json) console.log(JSON.stringify(out, null, 1));
    else {
      console.log(`${args.circuit}: ${kept.length} of ${graph.nEdges} edges · model ${modelName} · backend ${backendName()}`);
      console.log(`  ${metric}: full ${metrics.full.toFixed(4)}, empty ${metrics.empty.toFixed(4)}, circuit ${metrics.circuit.toFixed(4)}, normalized ${metrics.normalized.toFixed(3)}`);
      console.log(`  faithfulness curve (by |score|): CPR ${curve.cpr?.toFixed(3)}, CMD ${curve.cmd?.toFixed(3)}`);
      if (gt) console.log(`  ground truth: ROC AUC ${gt.roc_auc.toFixed(3)}, precision ${gt.precision.toFixed(3)}, recall ${gt.recall.toFixed(3)}`);
    }
    return 0;
  } finally {
    patcher.dispose();
    loaded.model.dispose();
  }
}
