import type { ShardRunner, WorkerCount } from '../scale/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { initBackend, backendName } from '../backend/index.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { readCircuitFile, writeCircuitFile } from '../graph/index.js';
import type { CircuitMeta } from '../graph/circuit-types.js';
import type { MaskEvaluator } from '../patching/patcher.js';
import { Executor } from '../scale/index.js';
import { createProgress, type Progress } from './progress.js';
import { checkMetricGap, parseMetricName } from '../metrics/index.js';
import { readPipelineConfig, type PipelineConfig } from '../discovery/config.js';
import { checkpointPath, runPipeline } from '../discovery/pipeline.js';
import { type DataSource, dataSourceOf, datasetSpec, describeSpec, resolveDataset } from '../discovery/data.js';
import { checkCheckpoint } from '../discovery/checkpoint.js';
import { evaluateCircuit, evidenceRank, maskOf, precisionRecall, rocAuc } from '../discovery/evaluate.js';
import { datasetHash } from '../tasks/index.js';
import { CircuitryError } from '../errors.js';
import { checkPipelineOutputs } from './flags.js';
import { withShardRunner } from './shard-runner.js';

/**
 * Ctrl-C (SIGINT) fires an AbortSignal that the library checks after every forward pass; the run
 * then writes its checkpoint and returns. A second Ctrl-C exits at once.
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
    console.error('\ninterrupted: stopping after the current pass and writing a checkpoint (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', handler) };
}

/** Progress bars per stage (stage, done/total, ETA, and the worker threads once known), drawn on stderr. */
export function stageProgress(): { onProgress: (stage: string, done: number, total: number) => void; stop: () => void; setWorkers: (threads: number) => void } {
  const bars = new Map<string, Progress>();
  let suffix = '';
  return {
    setWorkers(threads) {
      suffix = threads > 0 ? ` · ${threads} workers` : '';
    },
    onProgress(stage, done, total) {
      let bar = bars.get(stage);
      if (!bar) {
        bars.forEach((b) => b.stop());
        bar = createProgress(`${stage}${suffix}`);
        bars.set(stage, bar);
      }
      bar.update(done, total);
    },
    stop: () => {
      bars.forEach((b) => b.stop());
      bars.clear();
    },
  };
}

async function writeReportFor(graphPath: string, reportPath: string): Promise<void> {
  const { writeReport } = await import('../report/files.js');
  writeReport(graphPath, reportPath);
}

/** Runs one pipeline file; returns the written graph path, or undefined when interrupted. */
export async function runPipelineFile(
  cfg: PipelineConfig,
  opts: { resume: boolean; fresh?: boolean; report: boolean; loaded?: LoadedModel; workers?: WorkerCount; runner?: ShardRunner; resumeHint?: string },
): Promise<string | undefined> {
  const resumeHint = opts.resumeHint ?? `circuitry discover ${cfg.file ?? 'PIPELINE.yaml'}`;
  // before the model loads: an interrupted run's checkpoint is continued or discarded on purpose only
  checkCheckpoint(checkpointPath(cfg), { resume: opts.resume, fresh: opts.fresh, command: resumeHint });
  const workers = opts.workers ?? cfg.workers ?? 1;
  // remote workers load the model by name: no shared copy of the weights here
  const loaded = opts.loaded ?? (await loadModel(cfg.model, { log: (m) => console.error(m), shareWeights: workers !== 1 && !opts.runner }));
  const interrupt = interruptSignal();
  const progress = stageProgress();
  try {
    const data = resolveDataset(loaded, { dataset: cfg.dataset, task: cfg.task });
    console.log(`${cfg.file ?? 'pipeline'}: model ${cfg.model}, ${data.name} (${data.clean.length} pairs × ${data.seqLen} tokens), backend ${backendName()}`);
    const result = await runPipeline(cfg, loaded, data, {
      log: (m) => {
        progress.stop(); // a stage ended: its bar (or its "done" line) goes first
        console.log(`  ${m}`);
      },
      onProgress: progress.onProgress,
      signal: interrupt.signal,
      resume: opts.resume,
      workers,
      runner: opts.runner,
      onPool: progress.setWorkers,
    });
    progress.stop();
    if (!result.complete || !result.file) {
      console.error(`stopped; the checkpoint is ${result.checkpoint}\nresume with: ${resumeHint} --resume`);
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

export async function discoverCli(args: { pipeline: string; resume: boolean; fresh: boolean; report: boolean; backend?: string; workers: WorkerCount; redis?: string; queue?: string }): Promise<number> {
  const cfg = readPipelineConfig(args.pipeline);
  checkPipelineOutputs(cfg, args.report);
  // --redis: connected before the model loads; N shards from --workers N, else the file's workers:
  return withShardRunner(
    args,
    args.workers,
    async (runner) => {
      await initBackend(args.backend);
      const resumeHint = `circuitry discover ${cfg.file ?? args.pipeline}${args.redis !== undefined ? ' --redis URL' : ''}`;
      // --workers, else the file's workers:, else 'auto'
      const out = await runPipelineFile(cfg, { resume: args.resume, fresh: args.fresh, report: args.report, workers: args.workers !== 'auto' ? args.workers : (cfg.workers ?? 'auto'), runner, resumeHint });
      return out ? 0 : 130;
    },
    cfg.workers,
  );
}

function dataSpec(args: { dataset?: string; task?: string; n: number; seed: number }): DataSource {
  return args.dataset ? { dataset: args.dataset } : { task: { name: args.task!, n: args.n, seed: args.seed } };
}

// `circuitry acdc` lives in commands/acdc.ts (library: discovery/acdc-circuit.ts).

/** Edge names of a ground-truth file: a circuit JSON (its in-graph edges) or one name per line. */
function readGroundTruth(path: string): string[] {
  if (!existsSync(path)) throw new CircuitryError(`--ground-truth: ${path} does not exist`);
  const text = readFileSync(path, 'utf8');
  const names = text.trimStart().startsWith('{')
    ? Object.entries(readCircuitFile(path).file.edges).filter(([, e]) => e.in_graph).map(([n]) => n)
    : text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (names.length === 0) throw new CircuitryError(`--ground-truth: ${path} names no edges (expected a circuit JSON with in-graph edges, or one edge name per line)`);
  return names;
}

/**
 * The data `evaluate` runs on: --dataset/--task when given; otherwise the recipe the circuit
 * recorded (meta.dataset.spec; older pipeline files: meta.config's task or dataset).
 */
function evaluationData(args: { circuit: string; dataset?: string; task?: string; n: number; seed: number }, meta: CircuitMeta | undefined): { source: DataSource; own: boolean } {
  if (args.dataset || args.task) return { source: dataSpec(args), own: false };
  const recorded = meta?.dataset?.spec;
  if (recorded) return { source: dataSourceOf(recorded), own: true };
  const cfg = (meta?.config ?? {}) as Partial<PipelineConfig>;
  if (cfg.dataset || cfg.task) return { source: { dataset: cfg.dataset, task: cfg.task }, own: true };
  throw new CircuitryError(`${args.circuit}: the file does not record its dataset (meta.dataset.spec); pass --dataset FILE or --task NAME`);
}

interface EvaluateArgs {
  circuit: string; model?: string; dataset?: string; task?: string; n: number; seed: number; metric?: string; groundTruth?: string; batchSize?: number; json: boolean; backend?: string; workers?: WorkerCount; redis?: string; queue?: string;
}

/** `circuitry evaluate`: with --redis, its mask evaluations run as shard jobs on `circuitry worker` processes. */
export async function evaluateCli(args: EvaluateArgs): Promise<number> {
  return withShardRunner(args as unknown as Record<string, unknown>, args.workers ?? 1, (runner) => evaluateWith(args, runner));
}

async function evaluateWith(args: EvaluateArgs, runner: ShardRunner | undefined): Promise<number> {
  const { file, circuit } = readCircuitFile(args.circuit);
  const meta = file.meta;
  const cfgMeta = (meta?.config ?? {}) as Partial<PipelineConfig>;
  const metric = parseMetricName(args.metric ?? meta?.metric ?? 'logit-diff');
  const batchSize = args.batchSize ?? cfgMeta.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new CircuitryError(`--batch-size: expected a positive integer, got ${batchSize}`);
  const modelName = args.model ?? meta?.model?.name;
  if (!modelName) throw new CircuitryError(`${args.circuit}: the file does not name its model (meta.model.name); pass --model`);
  const { source, own } = evaluationData(args, meta);
  const graph = circuit.graph;
  const truthFromFile = args.groundTruth ? readGroundTruth(args.groundTruth) : undefined;
  for (const n of truthFromFile ?? []) {
    try {
      graph.edge(n);
    } catch {
      throw new CircuitryError(`--ground-truth: ${args.groundTruth} names '${n}', which is not an edge of the circuit's graph`);
    }
  }
  await initBackend(args.backend);
  const workers = args.workers ?? 1;
  const loaded = await loadModel(modelName, { log: (m) => console.error(m), shareWeights: workers !== 1 });
  const data = resolveDataset(loaded, source);
  const hash = datasetHash(data).slice(0, 16);
  const recordedHash = own ? meta?.dataset?.hash : undefined;
  const spec = datasetSpec(source);
  const said = `${describeSpec(spec)}: ${data.clean.length} pairs${own ? ", the circuit's own dataset" : ''}`;
  if (!args.json) console.log(`dataset: ${said}`);
  if (recordedHash && recordedHash !== hash) {
    console.error(`warning: this dataset (hash ${hash}) is not the one the circuit was discovered on (hash ${recordedHash}); the numbers will differ from discover's`);
  }
  const executor = new Executor(loaded, workers, { runner });
  let patcher: MaskEvaluator | undefined;
  try {
    patcher = await executor.patcher(graph, data, { metric, batchSize });
    checkMetricGap(metric, patcher.cleanMetric, patcher.corruptedMetric, data.name);
    const kept = Object.entries(file.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
    const inCircuit = new Set(kept);
    // a pipeline circuit ranks its edges by all its evidence: rebuild that ranking so that the
    // curve is the one discover measured; other circuits rank by |score|
    const evidence = meta?.method === 'pipeline' ? meta.edge_evidence : undefined;
    const rank = evidence
      ? evidenceRank(graph, evidence, inCircuit, patcher.cleanMetric - patcher.corruptedMetric)
      : Float64Array.from(circuit.scores, (s) => (Number.isFinite(s) ? Math.abs(s) : 0));
    const { metrics, faithfulness: curve } = await evaluateCircuit(patcher, maskOf(patcher, kept), { rank });
    const truthNames = truthFromFile ?? (loaded.zoo?.groundTruth?.[data.name] ? [...loaded.zoo.groundTruth[data.name]] : undefined);
    let gt: Record<string, number> | undefined;
    if (truthNames) {
      const truth = new Set(truthNames);
      const rocRank = evidence ? Array.from(graph.edges, (e) => rank[e.index]) : graph.edges.map((e) => (circuit.inGraph[e.index] ? 2 : 0) + Math.min(1, rank[e.index]));
      gt = { roc_auc: rocAuc(rocRank, graph.edges.map((e) => truth.has(e.name))), ...precisionRecall(kept, truth) };
    }
    const out = { file: args.circuit, model: modelName, backend: backendName(), dataset: { ...spec, hash, own }, n_edges: kept.length, metric, ...metrics, faithfulness: curve, ground_truth: gt };
    if (args.json) console.log(JSON.stringify(out, null, 1));
    else {
      console.log(`${args.circuit}: ${kept.length} of ${graph.nEdges} edges · model ${modelName} · backend ${backendName()}`);
      console.log(`  ${metric}: full ${metrics.full.toFixed(4)}, empty ${metrics.empty.toFixed(4)}, circuit ${metrics.circuit.toFixed(4)}, normalized ${metrics.normalized.toFixed(3)}`);
      console.log(`  faithfulness curve (${evidence ? "by the pipeline's evidence" : 'by |score|'}): CPR ${curve?.cpr?.toFixed(3)}, CMD ${curve?.cmd?.toFixed(3)}`);
      if (gt) console.log(`  ground truth: ROC AUC ${gt.roc_auc.toFixed(3)}, precision ${gt.precision.toFixed(3)}, recall ${gt.recall.toFixed(3)}`);
    }
    return 0;
  } finally {
    patcher?.dispose();
    await executor.close();
    loaded.model.dispose();
  }
}
