import type { ShardRunner, WorkerCount } from '../scale/index.js';
import { join, dirname, basename } from 'node:path';
import { createHash } from 'node:crypto';
import type { LoadedModel } from '../model/load.js';
import { type TaskDataset, datasetHash } from '../tasks/index.js';
import { graphForModel } from '../graph/graph.js';
import type { AcdcStep, CircuitFile, CircuitMeta, EdgeEvidence } from '../graph/circuit-types.js';
import { circuitToJson, createCircuit } from '../graph/index.js';
import { checkMetricGap } from '../metrics/index.js';
import type { MaskEvaluator } from '../patching/patcher.js';
import { Executor } from '../scale/index.js';
import { maskPatching } from '../patching/path-patching.js';
import { CircuitryError, InterruptedError } from '../errors.js';
import { type AcdcCheckpoint, runAcdc } from './acdc.js';
import { evaluateCircuit, evidenceRank, maskOf, precisionRecall, rocAuc } from './evaluate.js';
import { type PipelineConfig, verifyTop } from './config.js';
import { checkCheckpoint, fileCheckpoint } from './checkpoint.js';
import { datasetMeta } from './data.js';
import { screenEdges } from './screen.js';
import { provenance } from '../graph/provenance.js';

export interface PipelineHooks {
  readonly log?: (message: string) => void;
  /** Progress of the current stage. */
  readonly onProgress?: (stage: string, done: number, total: number) => void;
  /** Checked between forward passes: when it fires, the run checkpoints and stops. */
  readonly signal?: AbortSignal;
  /** Polled like `signal` (between stages, verify groups and ACDC passes). */
  readonly shouldStop?: () => boolean;
  /** Continue from the checkpoint, skipping the stages it holds. */
  readonly resume?: boolean;
  /** Discard an existing checkpoint (without it, an existing checkpoint is an error). */
  readonly fresh?: boolean;
  /**
   * Worker threads (overrides cfg.workers; default 1, in-process). Every result is the same
   * whatever the count: the pool shards whole batches and sums them in dataset order.
   */
  readonly workers?: WorkerCount;
  /**
   * Where the pooled stages run instead of worker threads (a RedisShardRunner: `discover
   * --redis`); the caller owns it and closes it. Results equal the in-process run's.
   */
  readonly runner?: ShardRunner;
  /** Called once the worker threads are known (0: the work runs in this process). */
  readonly onPool?: (threads: number) => void;
}

export interface PipelineResult {
  /** The circuit file (undefined when the run stopped early; its checkpoint holds the state). */
  readonly file?: CircuitFile;
  readonly complete: boolean;
  readonly checkpoint: string;
  /** Stages taken from the checkpoint rather than run. */
  readonly reused: readonly string[];
}

/** Where a pipeline keeps its checkpoint: beside the output graph. */
export function checkpointPath(cfg: PipelineConfig): string {
  return join(dirname(cfg.output.graph), `.${basename(cfg.output.graph)}.checkpoint.json`);
}

/**
 * The pipeline's checkpoint: every finished stage (screen scores, verified effects, ACDC's
 * decisions) and the state of the unfinished one, written atomically as each stage (and each
 * verify group, each ACDC destination) finishes.
 */
interface PipelineCheckpoint {
  version: 3;
  key: string;
  screen?: { scores: number[]; seconds: number };
  verify?: { noise: number[]; denoise: number[]; seconds: number; complete: boolean };
  prune?: { state?: AcdcCheckpoint; result?: { kept: string[]; steps: AcdcStep[]; forwardPasses: number }; seconds: number };
}

/** Candidates verified per group: a checkpoint and a chance to stop after each group. */
const VERIFY_GROUP = 32;

/** The run a checkpoint belongs to: model, data and every setting that shapes the stages. */
function pipelineKey(cfg: PipelineConfig, loaded: LoadedModel, data: TaskDataset): string {
  const { file: _file, output: _output, evaluate: _evaluate, workers: _workers, ...settings } = cfg;
  return createHash('sha256')
    .update(JSON.stringify({ settings, model: loaded.source.hash, data: datasetHash(data) }))
    .digest('hex')
    .slice(0, 24);
}

/**
 * screen (EAP / EAP-IG over every edge) → candidates (top by |score|) → verify (the real effect
 * of each candidate, patched alone, noising and denoising) → prune (ACDC over the verified
 * candidates, then redundant paths rescued by their denoising effect) → evaluate.
 *
 * Stops before any stage when clean and corrupted give the same metric. Each finished stage is
 * checkpointed; a stopped run (signal, shouldStop) returns `complete: false`, and `resume`
 * continues it, reusing the finished stages.
 */
export async function runPipeline(cfg: PipelineConfig, loaded: LoadedModel, data: TaskDataset, hooks: PipelineHooks = {}): Promise<PipelineResult> {
  const log = hooks.log ?? (() => {});
  const { model } = loaded;
  const graph = graphForModel(model.cfg);
  const checkpoint = checkpointPath(cfg);
  checkCheckpoint(checkpoint, { resume: hooks.resume, fresh: hooks.fresh, command: cfg.file ? `circuitry discover ${cfg.file}` : undefined });
  const store = fileCheckpoint<PipelineCheckpoint>(checkpoint);
  const key = pipelineKey(cfg, loaded, data);
  let cp: PipelineCheckpoint = { version: 3, key };
  if (hooks.resume) {
    const saved = store.load();
    if (!saved || saved.version !== 3 || saved.key !== key) {
      throw new CircuitryError(`${checkpoint}: the checkpoint belongs to a different run (model, data or settings changed); run with --fresh to start over`);
    }
    cp = saved;
  }
  const save = () => store.save(cp);
  const stopRequested = () => hooks.signal?.aborted === true || hooks.shouldStop?.() === true;
  const reused: string[] = [];
  const stopped = (): PipelineResult => {
    save();
    return { complete: false, checkpoint, reused };
  };
  const timings: Record<string, number> = {};

  const executor = new Executor(loaded, hooks.workers ?? cfg.workers ?? 1, { log, runner: hooks.runner });
  let noise: MaskEvaluator | undefined;
  let denoise: MaskEvaluator | undefined;
  let kl: MaskEvaluator | undefined;
  try {
    try {
      noise = await executor.patcher(graph, data, { metric: cfg.metric, direction: 'noise', batchSize: cfg.batchSize }, hooks.signal);
    } catch (e) {
      if (e instanceof InterruptedError) return stopped();
      throw e;
    }
    const pooled = executor.remote ? ` on ${executor.threads} shard${executor.threads === 1 ? '' : 's'} over Redis` : executor.threads > 0 ? ` on ${executor.threads} workers` : '';
    hooks.onPool?.(executor.threads);
    const gap = noise.cleanMetric - noise.corruptedMetric;
    log(`${graph.nEdges} edges; ${cfg.metric}: clean ${fmt(noise.cleanMetric)}, corrupted ${fmt(noise.corruptedMetric)}${pooled}`);
    checkMetricGap(cfg.metric, noise.cleanMetric, noise.corruptedMetric, data.name);
    try {
      denoise = cfg.prune.rescue > 0 ? await executor.patcher(graph, data, { metric: cfg.metric, direction: 'denoise', batchSize: cfg.batchSize }, hooks.signal) : undefined;
      kl = cfg.prune.faith === 'kl' ? await executor.patcher(graph, data, { metric: 'kl', direction: 'noise', batchSize: cfg.batchSize }, hooks.signal) : undefined;
    } catch (e) {
      if (e instanceof InterruptedError) return stopped();
      throw e;
    }

    // 1. screen
    let scores: Float32Array;
    if (cp.screen) {
      scores = graph.denseEdgeArray(0);
      graph.edges.forEach((e, i) => (scores[e.index] = cp.screen!.scores[i]));
      reused.push('screen');
    } else {
      const t0 = performance.now();
      try {
        scores = await screenEdges(noise, cfg.screen.method, cfg.screen.steps, { onProgress: (done, total) => hooks.onProgress?.('screen', done, total), signal: hooks.signal });
      } catch (e) {
        if (e instanceof InterruptedError) return stopped();
        throw e;
      }
      cp.screen = { scores: graph.edges.map((e) => scores[e.index]), seconds: (performance.now() - t0) / 1000 };
      save();
    }
    timings.screen = cp.screen.seconds;
    const ranked = [...graph.edges].sort((a, b) => Math.abs(scores[b.index]) - Math.abs(scores[a.index]));
    const totalAbs = ranked.reduce((s, e) => s + Math.abs(scores[e.index]), 0);
    const candidates: typeof ranked = [];
    const top = cfg.verify.top ?? verifyTop(graph.nEdges);
    let acc = 0;
    for (const e of ranked) {
      if (candidates.length >= top || (cfg.verify.share < 1 && acc >= cfg.verify.share * totalAbs)) break;
      candidates.push(e);
      acc += Math.abs(scores[e.index]);
    }
    log(`screen (${cfg.screen.method}): ${candidates.length} candidates of ${graph.nEdges} edges${reused.includes('screen') ? ' (from the checkpoint)' : ''}`);
    if (stopRequested()) return stopped();

    // 2. verify: each candidate patched alone, in both directions (denoising effects are needed
    // only to rescue redundant paths), in groups, each group checkpointed
    const v = cp.verify ?? { noise: [], denoise: [], seconds: 0, complete: false };
    cp.verify = v;
    if (v.complete) reused.push('verify');
    else {
      const t0 = performance.now();
      const before = v.seconds;
      const parts = denoise ? 2 : 1;
      const total = parts * candidates.length;
      const groupRun = async (patcher: MaskEvaluator, out: number[], offset: number) => {
        while (out.length < candidates.length) {
          const group = candidates.slice(out.length, out.length + VERIFY_GROUP);
          const done = offset + out.length;
          const values = await patcher.evaluateAsync(
            group.map((e) => maskPatching(patcher, [e])),
            { signal: hooks.signal, onProgress: (d, t) => hooks.onProgress?.('verify', done + Math.round((d / Math.max(t, 1)) * group.length), total) },
          );
          out.push(...values.map((x) => x - patcher.baseMetric));
          v.seconds = before + (performance.now() - t0) / 1000;
          save();
          if (out.length < candidates.length && stopRequested()) throw new InterruptedError();
        }
      };
      try {
        await groupRun(noise, v.noise, 0);
        if (denoise) await groupRun(denoise, v.denoise, candidates.length);
      } catch (e) {
        if (e instanceof InterruptedError) return stopped();
        throw e;
      }
      v.complete = true;
      save();
    }
    timings.verify = v.seconds;
    const noiseEffects = v.noise;
    const denoiseEffects = denoise ? v.denoise : v.noise.map(() => 0);
    const floor = cfg.verify.floor * Math.abs(gap);
    const verified = candidates.filter((_, i) => Math.max(Math.abs(noiseEffects[i]), Math.abs(denoiseEffects[i])) >= floor);
    // (without rescue the denoising effects are all 0, so this is the noising effect alone)
    log(`verify: ${verified.length} of ${candidates.length} candidates have a real effect ≥ ${fmt(floor)}${reused.includes('verify') ? ' (from the checkpoint)' : ''}`);
    if (stopRequested()) return stopped();

    // 3. prune with ACDC over the verified candidates
    const pruner = kl ?? noise;
    const tau = cfg.prune.absolute || cfg.prune.faith === 'kl' ? cfg.prune.tau : cfg.prune.tau * Math.abs(gap);
    let acdc: { kept: string[]; steps: AcdcStep[]; forwardPasses: number };
    if (cp.prune?.result) {
      acdc = cp.prune.result;
      reused.push('prune');
    } else {
      const t0 = performance.now();
      const before = cp.prune?.seconds ?? 0;
      const prune = cp.prune ?? { seconds: 0 };
      cp.prune = prune;
      const r = await runAcdc(pruner, {
        tau,
        order: cfg.prune.order,
        faith: cfg.prune.faith,
        candidates: verified.map((e) => e.name),
        skipUnused: true,
        // an edge whose effect alone reaches τ will most likely stay (faith in metric units)
        expectKept: cfg.prune.faith === 'kl' ? undefined : new Set(candidates.filter((_, i) => Math.abs(noiseEffects[i]) >= tau).map((e) => e.name)),
        // ACDC's state lives inside the pipeline's checkpoint
        checkpoint: {
          path: checkpoint,
          load: () => prune.state,
          save: (state) => {
            prune.state = state;
            prune.seconds = before + (performance.now() - t0) / 1000;
            save();
          },
          clear: () => {
            prune.state = undefined;
          },
        },
        resume: prune.state !== undefined,
        signal: hooks.signal,
        shouldStop: hooks.shouldStop,
        onProgress: (done, total) => hooks.onProgress?.('prune', done, total),
      });
      if (!r.complete) return stopped();
      acdc = { kept: r.kept, steps: r.steps, forwardPasses: r.forwardPasses };
      prune.result = acdc;
      prune.seconds = before + (performance.now() - t0) / 1000;
      save();
    }
    timings.prune = cp.prune.seconds;
    const inCircuit = new Set(acdc.kept);
    // Redundant paths (OR): ACDC keeps one of two sufficient paths; add back every verified edge
    // that alone restores a clear share of the metric when denoised.
    const rescued: string[] = [];
    candidates.forEach((e, i) => {
      if (cfg.prune.rescue > 0 && !inCircuit.has(e.name) && verified.includes(e) && Math.abs(denoiseEffects[i]) >= cfg.prune.rescue * Math.abs(gap)) {
        inCircuit.add(e.name);
        rescued.push(e.name);
      }
    });
    log(`prune (ACDC, τ = ${fmt(tau)}): kept ${acdc.kept.length} edges${rescued.length ? `, rescued ${rescued.length} redundant` : ''}${reused.includes('prune') ? ' (from the checkpoint)' : ''}`);
    if (stopRequested()) return stopped();

    // evidence per edge, and one ranking score (evidenceRank): the circuit, then ACDC's effect,
    // then the verified effect, then attribution
    const evidence: Record<string, EdgeEvidence> = {};
    for (const e of graph.edges) evidence[e.name] = { attribution: scores[e.index] };
    candidates.forEach((e, i) => {
      evidence[e.name].verified = noiseEffects[i];
      if (denoise) (evidence[e.name] as EdgeEvidence & { verified_denoise?: number }).verified_denoise = denoiseEffects[i];
    });
    for (const s of acdc.steps) {
      const ev = evidence[s.edge];
      ev.acdc_delta = s.delta;
      ev.acdc_tau = s.removed ? Math.max(0, s.delta) : s.delta;
    }
    for (const name of rescued) evidence[name].acdc_tau = null;
    const rank = evidenceRank(graph, evidence, inCircuit, gap);

    // 4. evaluate; the faithfulness curve adds edges in the order of all the evidence above
    const mask = maskOf(noise, inCircuit);
    const t0 = performance.now();
    let evaluation: Awaited<ReturnType<typeof evaluateCircuit>>;
    try {
      evaluation = await evaluateCircuit(noise, mask, {
        rank: cfg.evaluate.faithfulness ? rank : undefined,
        signal: hooks.signal,
        onProgress: (done, total) => hooks.onProgress?.('evaluate', done, total),
      });
    } catch (e) {
      if (e instanceof InterruptedError) return stopped();
      throw e;
    }
    timings.evaluate = (performance.now() - t0) / 1000;

    const groundTruth = loaded.zoo?.groundTruth?.[data.name];
    let gt: CircuitMeta['ground_truth'];
    if (groundTruth) {
      const truth = new Set(groundTruth);
      const pr = precisionRecall(inCircuit, truth);
      gt = {
        edges: [...groundTruth],
        roc_auc: rocAuc(graph.edges.map((e) => rank[e.index]), graph.edges.map((e) => truth.has(e.name))),
        precision: pr.precision,
        recall: pr.recall,
      };
    }
    const circuit = createCircuit(graph, { scores, inGraph: mask, dModel: model.cfg.dModel });
    const meta: CircuitMeta = {
      ...provenance({ model: loaded, dataset: data }),
      dataset: datasetMeta(data, { dataset: cfg.dataset, task: cfg.task }),
      task: data.name,
      metric: cfg.metric,
      method: 'pipeline',
      direction: 'noise',
      config: { ...cfg, file: undefined, workers: undefined },
      timings,
      metrics: { clean: noise.cleanMetric, corrupted: noise.corruptedMetric, empty: evaluation.metrics.empty, circuit: evaluation.metrics.circuit, normalized: evaluation.metrics.normalized },
      edge_evidence: evidence,
      acdc: { tau, order: cfg.prune.order, metric: cfg.prune.faith, steps: acdc.steps },
      faithfulness: evaluation.faithfulness,
      ground_truth: gt,
      examples: (data.text ?? []).slice(0, 8).map((t) => ({ ...t })),
      pipeline: {
        screen: { method: cfg.screen.method, steps: cfg.screen.steps, n_edges: graph.nEdges },
        verify: { top, candidates: candidates.length, verified: verified.length, floor },
        prune: { kept: acdc.kept.length, rescued, tau, forward_passes: acdc.forwardPasses },
      },
    };
    store.clear();
    return { file: circuitToJson(circuit, meta), complete: true, checkpoint, reused };
  } finally {
    noise?.dispose();
    denoise?.dispose();
    kl?.dispose();
    await executor.close();
  }
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toFixed(4);
}
