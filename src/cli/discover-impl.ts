import { existsSync, readFileSync } from 'node:fs';
import { initBackend, backendName } from '../backend/index.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { readCircuitFile, writeCircuitFile } from '../graph/index.js';
import { Patcher } from '../patching/patcher.js';
import { createProgress, type Progress } from '../patching/progress.js';
import { parseMetricName } from '../metrics/index.js';
import { readPipelineConfig, type PipelineConfig } from '../discovery/config.js';
import { runPipeline } from '../discovery/pipeline.js';
import { resolveDataset } from '../discovery/data.js';
import { circuitMetrics, faithfulnessCurve, maskOf, precisionRecall, rocAuc } from '../discovery/evaluate.js';
import { CircuitryError } from '../errors.js';
import { checkPipelineOutputs } from './flags.js';

/** Ctrl-C sets a flag the long loops poll; a second Ctrl-C exits at once. */
export function interruptFlag(): { stop: () => boolean; dispose: () => void } {
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
export function stageProgress(): { onProgress: (stage: string, done: number, total: number) => void; stop: () => void } {
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
  checkPipelineOutputs(cfg, args.report);
  await initBackend(args.backend);
  const out = await runPipelineFile(cfg, { resume: args.resume, report: args.report });
  return out ? 0 : 130;
}

function dataSpec(args: { dataset?: string; task?: string; n: number; seed: number }) {
  return args.dataset ? { dataset: args.dataset } : { task: { name: args.task!, n: args.n, seed: args.seed } };
}

// `circuitry acdc` lives in commands/acdc.ts (library: discovery/acdc-circuit.ts).

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
    const out = { file: args.circuit, model: modelName, backend: backendName(), dataset: { name: data.name, source: data.source, n_examples: data.clean.length, seq_len: data.seqLen }, n_edges: kept.length, metric, ...metrics, faithfulness: curve, ground_truth: gt };
    if (args.json) console.log(JSON.stringify(out, null, 1));
    else {
      console.log(`${args.circuit}: ${kept.length} of ${graph.nEdges} edges · model ${modelName} · backend ${backendName()}`);
      console.log(`  dataset: ${data.source} (${data.clean.length} pairs of ${data.seqLen} tokens)${args.dataset || args.task ? '' : ", the circuit's own (from its meta)"}`);
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
