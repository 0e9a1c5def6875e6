import { join, dirname, basename } from 'node:path';
import type { LoadedModel } from '../model/load.js';
import type { TaskDataset } from '../tasks/index.js';
import { datasetHash } from '../tasks/index.js';
import { graphForModel } from '../graph/graph.js';
import type { CircuitFile, CircuitMeta, EdgeEvidence } from '../graph/circuit-types.js';
import { circuitToJson, createCircuit } from '../graph/index.js';
import { Patcher } from '../patching/patcher.js';
import { verifyEdges } from '../patching/path-patching.js';
import { backendName } from '../backend/index.js';
import { runAcdc } from './acdc.js';
import { circuitMetrics, faithfulnessCurve, maskOf, precisionRecall, rocAuc } from './evaluate.js';
import { type PipelineConfig, verifyTop } from './config.js';
import { screenEdges } from './screen.js';
import { VERSION } from '../version.js';

export interface PipelineHooks {
  readonly log?: (message: string) => void;
  /** Progress of the current stage. */
  readonly onProgress?: (stage: string, done: number, total: number) => void;
  readonly shouldStop?: () => boolean;
  readonly resume?: boolean;
}

export interface PipelineResult {
  /** The circuit file (undefined when the run stopped early; its checkpoint holds the state). */
  readonly file?: CircuitFile;
  readonly complete: boolean;
  readonly checkpoint: string;
}

/** Where a pipeline keeps its ACDC checkpoint: beside the output graph. */
export function checkpointPath(cfg: PipelineConfig): string {
  return join(dirname(cfg.output.graph), `.${basename(cfg.output.graph)}.checkpoint.json`);
}

/**
 * screen (EAP / EAP-IG over every edge) → candidates (top by |score|) → verify (the real effect
 * of each candidate, patched alone, noising and denoising) → prune (ACDC over the verified
 * candidates, then redundant paths rescued by their denoising effect) → evaluate.
 */
export async function runPipeline(cfg: PipelineConfig, loaded: LoadedModel, data: TaskDataset, hooks: PipelineHooks = {}): Promise<PipelineResult> {
  const log = hooks.log ?? (() => {});
  const { model } = loaded;
  const graph = graphForModel(model.cfg);
  const timings: Record<string, number> = {};
  const time = async <T>(stage: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await fn();
    timings[stage] = (performance.now() - t0) / 1000;
    return out;
  };
  const checkpoint = checkpointPath(cfg);
  const noise = new Patcher(model, graph, data, { metric: cfg.metric, direction: 'noise', batchSize: cfg.batchSize });
  const denoise = cfg.prune.rescue > 0 ? new Patcher(model, graph, data, { metric: cfg.metric, direction: 'denoise', batchSize: cfg.batchSize }) : undefined;
  const kl = cfg.prune.faith === 'kl' ? new Patcher(model, graph, data, { metric: 'kl', direction: 'noise', batchSize: cfg.batchSize }) : undefined;
  try {
    const gap = noise.cleanMetric - noise.corruptedMetric;
    log(`${graph.nEdges} edges; ${cfg.metric}: clean ${fmt(noise.cleanMetric)}, corrupted ${fmt(noise.corruptedMetric)}`);

    // 1. screen
    const scores = await time('screen', () => screenEdges(noise, cfg.screen.method, cfg.screen.steps, (done, total) => hooks.onProgress?.('screen', done, total)));
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
    log(`screen (${cfg.screen.method}): ${candidates.length} candidates of ${graph.nEdges} edges`);

    // 2. verify: each candidate patched alone, in both directions
    const { noiseEffects, denoiseEffects } = await time('verify', () => {
      const names = candidates.map((e) => e.name);
      // denoising effects are needed only to rescue redundant paths
      const parts = denoise ? 2 : 1;
      const n = verifyEdges(noise, names, { onProgress: (done, total) => hooks.onProgress?.('verify', done, parts * total) });
      const d = denoise ? verifyEdges(denoise, names, { onProgress: (done, total) => hooks.onProgress?.('verify', total + done, 2 * total) }) : undefined;
      return { noiseEffects: n.map((r) => r.delta), denoiseEffects: d ? d.map((r) => r.delta) : n.map(() => 0) };
    });
    const floor = cfg.verify.floor * Math.abs(gap);
    const verified = candidates.filter((_, i) => Math.max(Math.abs(noiseEffects[i]), Math.abs(denoiseEffects[i])) >= floor);
    // (without rescue the denoising effects are all 0, so this is the noising effect alone)
    log(`verify: ${verified.length} of ${candidates.length} candidates have a real effect ≥ ${fmt(floor)}`);

    // 3. prune with ACDC over the verified candidates
    const pruner = kl ?? noise;
    const tau = cfg.prune.absolute || cfg.prune.faith === 'kl' ? cfg.prune.tau : cfg.prune.tau * Math.abs(gap);
    const acdc = await time('prune', () =>
      runAcdc(pruner, {
        tau,
        order: cfg.prune.order,
        faith: cfg.prune.faith,
        candidates: verified.map((e) => e.name),
        skipUnused: true,
        // an edge whose effect alone reaches τ will most likely stay (faith in metric units)
        expectKept: cfg.prune.faith === 'kl' ? undefined : new Set(candidates.filter((_, i) => Math.abs(noiseEffects[i]) >= tau).map((e) => e.name)),
        checkpoint,
        resume: hooks.resume,
        shouldStop: hooks.shouldStop,
        onProgress: (done, total) => hooks.onProgress?.('prune', done, total),
      }),
    );
    if (!acdc.complete) return { complete: false, checkpoint };
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
    log(`prune (ACDC, τ = ${fmt(tau)}): kept ${acdc.kept.length} edges${rescued.length ? `, rescued ${rescued.length} redundant` : ''}`);

    // evidence per edge, and one ranking score: the circuit, then ACDC's effect, then the verified
    // effect, then attribution
    const evidence: Record<string, EdgeEvidence> = {};
    const rank = new Float64Array(graph.denseSize);
    const maxAttr = Math.max(1e-30, ...ranked.slice(0, 1).map((e) => Math.abs(scores[e.index])));
    for (const e of graph.edges) {
      evidence[e.name] = { attribution: scores[e.index] };
      rank[e.index] = Math.abs(scores[e.index]) / maxAttr; // [0, 1]
    }
    candidates.forEach((e, i) => {
      evidence[e.name].verified = noiseEffects[i];
      if (denoise) (evidence[e.name] as EdgeEvidence & { verified_denoise?: number }).verified_denoise = denoiseEffects[i];
      rank[e.index] = 1 + Math.min(1, Math.max(Math.abs(noiseEffects[i]), Math.abs(denoiseEffects[i])) / Math.max(1e-30, Math.abs(gap)));
    });
    // ACDC's deltas are effects in the pruned circuit's context: the better order (measured on
    // the faithfulness curves of the zoo models)
    const maxDelta = Math.max(1e-30, ...acdc.steps.map((s) => Math.abs(s.delta)));
    for (const s of acdc.steps) {
      const ev = evidence[s.edge];
      ev.acdc_delta = s.delta;
      ev.acdc_tau = s.removed ? Math.max(0, s.delta) : s.delta;
      rank[graph.edge(s.edge).index] = 2 + Math.abs(s.delta) / maxDelta;
    }
    for (const name of inCircuit) {
      const e = graph.edge(name);
      rank[e.index] += 3;
      if (rescued.includes(name)) evidence[name].acdc_tau = null;
    }

    // 4. evaluate; the faithfulness curve adds edges in the order of all the evidence above
    const mask = maskOf(noise, inCircuit);
    const evaluation = await time('evaluate', () => {
      const metrics = circuitMetrics(noise, mask);
      const faithfulness = cfg.evaluate.faithfulness ? faithfulnessCurve(noise, rank) : undefined;
      return { metrics, faithfulness };
    });

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
      tool: { name: 'circuitry', version: VERSION },
      created: new Date().toISOString(),
      backend: backendName(),
      model: { name: loaded.name, hash: loaded.source.hash },
      dataset: { name: data.name, hash: datasetHash(data).slice(0, 16), n_examples: data.clean.length, seq_len: data.seqLen },
      task: data.name,
      metric: cfg.metric,
      method: 'pipeline',
      direction: 'noise',
      config: { ...cfg, file: undefined },
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
    return { file: circuitToJson(circuit, meta), complete: true, checkpoint };
  } finally {
    noise.dispose();
    denoise?.dispose();
    kl?.dispose();
  }
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toFixed(4);
}
