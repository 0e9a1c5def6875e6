import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import type { CircuitGraph } from '../graph/graph.js';
import { type MetricName, metricPerExample } from '../metrics/index.js';
import { type PairData, Patcher } from '../patching/patcher.js';
import { CircuitryError } from '../errors.js';
import { maskOf } from './evaluate.js';

/**
 * Circuit evaluation for the live report (and anything else that re-evaluates one circuit at a
 * time): the same Patcher, metric, ablation and normalization as `circuitry evaluate`
 * (circuitMetrics in evaluate.ts), plus the per-prompt metric and logit difference of the
 * circuit. Free of node:fs: it runs in the browser bundle.
 */

export interface LiveEvaluatorOptions {
  /** `circuitry evaluate`'s defaults: logit-diff, 32 prompts per pass. */
  readonly metric?: MetricName;
  readonly batchSize?: number;
}

export interface PerPrompt {
  /** The metric of each prompt (its batch mean is the circuit's metric). */
  readonly metric: number[];
  /** Right minus wrong answer logit (log-sum-exp over answer sets) at the last position. */
  readonly logitDiff: number[];
}

export interface LiveResult {
  /** The circuit's metric (batch mean over the dataset). */
  readonly metric: number;
  /** (circuit − empty) / (full − empty), as circuitMetrics computes it. */
  readonly normalized: number;
  readonly nEdges: number;
  readonly perPrompt: PerPrompt;
}

export class LiveEvaluator {
  readonly patcher: Patcher;
  readonly graph: CircuitGraph;
  readonly metric: MetricName;
  /** The metric of the full model and of the empty circuit (every edge patched). */
  readonly full: number;
  readonly empty: number;
  readonly fullPerPrompt: PerPrompt;
  readonly emptyPerPrompt: PerPrompt;

  constructor(model: Transformer, graph: CircuitGraph, data: PairData, opts: LiveEvaluatorOptions = {}) {
    this.metric = opts.metric ?? 'logit-diff';
    this.graph = graph;
    this.patcher = new Patcher(model, graph, data, { metric: this.metric, batchSize: opts.batchSize ?? 32 });
    const none = new Float32Array(graph.denseSize);
    this.full = this.patcher.baseMetric;
    this.empty = this.patcher.evaluate([none])[0];
    this.fullPerPrompt = this.unpatchedPerPrompt();
    this.emptyPerPrompt = this.perPrompt(none);
  }

  get nExamples(): number {
    return this.patcher.nExamples;
  }

  /** The dense mask of exactly these edges; an unknown name is an error naming it. */
  mask(edgeNames: Iterable<string>): Float32Array {
    return maskOf(this.patcher, edgeNames);
  }

  /** The circuit of exactly `edgeNames`: its metric, normalized faithfulness and per-prompt values. */
  evaluate(edgeNames: Iterable<string>): LiveResult {
    const names = [...new Set(edgeNames)];
    const perPrompt = this.perPrompt(this.mask(names));
    // the batch mean of the very logits Patcher.evaluate computes for this mask (same pass, same
    // start layer); only the mean's summation order differs (float64 here)
    const metric = perPrompt.metric.reduce((a, b) => a + b, 0) / perPrompt.metric.length;
    return { metric, normalized: (metric - this.empty) / (this.full - this.empty), nEdges: names.length, perPrompt };
  }

  /** Per-prompt values under one mask: one masked pass per chunk of prompts, as Patcher.evaluate runs it. */
  perPrompt(mask: Float32Array): PerPrompt {
    const L = this.patcher.engine.model.cfg.nLayers;
    const start = Math.min(L - 1, this.patcher.engine.firstPatchedLayer(mask));
    return this.collect((chunk) => this.patcher.engine.maskedForward({ run: chunk.run, patch: chunk.patch, masks: [mask], startAtLayer: start }));
  }

  private unpatchedPerPrompt(): PerPrompt {
    return this.collect((chunk) => chunk.run.logits.clone());
  }

  private collect(logitsOf: (chunk: Parameters<Parameters<Patcher['forEachChunk']>[0]>[0]) => tf.Tensor): PerPrompt {
    const metric: number[] = [];
    const logitDiff: number[] = [];
    this.patcher.forEachChunk((chunk) => {
      const [m, ld] = tf.tidy(() => {
        const logits = logitsOf(chunk);
        return [metricPerExample(this.metric, logits, chunk.targets), metricPerExample('logit-diff', logits, chunk.targets)];
      });
      metric.push(...m.dataSync());
      logitDiff.push(...ld.dataSync());
      tf.dispose([m, ld]);
    });
    if (metric.length !== this.nExamples) throw new CircuitryError(`live evaluation: ${metric.length} per-prompt values for ${this.nExamples} prompts`);
    return { metric, logitDiff };
  }

  dispose(): void {
    this.patcher.dispose();
  }
}
