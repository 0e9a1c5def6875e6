import type { WorkerCount } from '../scale/index.js';
import type { LoadedModel } from '../model/load.js';
import type { TaskDataset } from '../tasks/index.js';
import { graphForModel } from '../graph/graph.js';
import type { CircuitFile, CircuitMeta } from '../graph/circuit-types.js';
import { circuitToJson, createCircuit } from '../graph/index.js';
import { provenance } from '../graph/provenance.js';
import { type MetricName, checkMetricGap } from '../metrics/index.js';
import { Executor, type ShardRunner } from '../scale/index.js';
import { InterruptedError } from '../errors.js';
import { runAcdc, type AcdcFaith } from './acdc.js';
import type { AcdcOrder } from './order.js';
import { circuitMetricsAsync } from './evaluate.js';
import { type DataSpec, datasetMeta } from './data.js';

export interface AcdcCircuitOptions {
  readonly metric: MetricName;
  /** τ: an edge is removed when the faith measure grows by less than this. */
  readonly tau: number;
  readonly order: AcdcOrder;
  readonly faith?: AcdcFaith;
  readonly batchSize?: number;
  readonly checkpoint?: string;
  readonly resume?: boolean;
  /** Ctrl-C: polled after every pass; the run then leaves its checkpoint. */
  readonly signal?: AbortSignal;
  readonly shouldStop?: () => boolean;
  readonly onProgress?: (done: number, total: number) => void;
  /** Where the data came from, recorded in meta.config so that `evaluate` can rebuild it. */
  readonly data?: DataSpec;
  /** Worker threads (default 1: in-process; 'auto': see resolveWorkers); the decisions are the same for any count. */
  readonly workers?: WorkerCount;
  /** Where pooled work runs instead of local threads (e.g. Redis shard jobs); the caller closes it. */
  readonly runner?: ShardRunner;
  /** Called once the worker threads are known (0: in this process). */
  readonly onPool?: (threads: number) => void;
}

export interface AcdcCircuitResult {
  /** The circuit file (in_graph marks the kept edges; score is each edge's ACDC delta); absent when stopped. */
  readonly file?: CircuitFile;
  readonly complete: boolean;
  readonly nEdges: number;
  readonly kept: number;
  readonly forwardPasses: number;
  readonly seconds: number;
}

/**
 * Plain ACDC (Conmy et al. 2023) over every edge of the model's graph, as a circuit file: the
 * library side of `circuitry acdc`. Interrupted runs (shouldStop) leave the checkpoint and
 * return complete: false.
 */
export async function acdcCircuit(loaded: LoadedModel, data: TaskDataset, opts: AcdcCircuitOptions): Promise<AcdcCircuitResult> {
  const { model } = loaded;
  const graph = graphForModel(model.cfg);
  const executor = new Executor(loaded, opts.workers ?? 1, { runner: opts.runner });
  const t0 = performance.now();
  try {
    let patcher;
    try {
      patcher = await executor.patcher(graph, data, { metric: opts.metric, ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}) }, opts.signal);
    } catch (e) {
      // Ctrl-C while the workers start: nothing decided yet
      if (e instanceof InterruptedError) return { complete: false, nEdges: graph.nEdges, kept: 0, forwardPasses: 0, seconds: (performance.now() - t0) / 1000 };
      throw e;
    }
    opts.onPool?.(executor.threads);
    // (with kl: the clean run's value is 0 and the corrupted run's KL(clean ‖ corrupted))
    checkMetricGap(opts.metric, patcher.cleanMetric, patcher.corruptedMetric, data.source);
    const result = await runAcdc(patcher, {
      tau: opts.tau,
      order: opts.order,
      ...(opts.faith ? { faith: opts.faith } : {}),
      ...(opts.checkpoint ? { checkpoint: opts.checkpoint } : {}),
      resume: opts.resume ?? false,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.shouldStop ? { shouldStop: opts.shouldStop } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    const seconds = (performance.now() - t0) / 1000;
    const summary = { complete: result.complete, nEdges: graph.nEdges, kept: result.kept.length, forwardPasses: result.forwardPasses, seconds };
    if (!result.complete) return summary;
    const evidence: NonNullable<CircuitMeta['edge_evidence']> = {};
    const scores = new Float32Array(graph.denseSize).fill(NaN);
    for (const s of result.steps) {
      evidence[s.edge] = { acdc_delta: s.delta, acdc_tau: Math.max(0, s.delta) };
      scores[graph.edge(s.edge).index] = s.delta;
    }
    const metrics = await circuitMetricsAsync(patcher, result.mask);
    patcher.dispose();
    const meta: CircuitMeta = {
      ...provenance({ model: loaded, dataset: data, timings: { prune: seconds } }),
      ...(opts.data ? { dataset: datasetMeta(data, opts.data) } : {}),
      task: data.name,
      metric: opts.metric,
      method: 'acdc',
      direction: 'noise',
      config: { model: loaded.name, ...(opts.data ?? {}), metric: opts.metric, tau: opts.tau, order: opts.order, faith: opts.faith ?? null, batch_size: opts.batchSize ?? null },
      metrics: { clean: patcher.cleanMetric, corrupted: patcher.corruptedMetric, ...metrics },
      edge_evidence: evidence,
      acdc: { tau: opts.tau, order: opts.order, metric: opts.faith ?? (opts.metric === 'kl' ? 'kl' : 'diff'), steps: result.steps },
    };
    return { ...summary, file: circuitToJson(createCircuit(graph, { scores, inGraph: result.mask, dModel: model.cfg.dModel }), meta) };
  } finally {
    await executor.close();
  }
}
