import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import type { HookName } from '../model/hooks.js';
import type { MetricTargets } from '../metrics/index.js';
import type { Patcher } from './patcher.js';
import type { OnProgress } from './progress.js';
import { type Site, stackedSiteForward } from './stacked.js';

/** Estimated floats a forward pass holds per prompt (activations of every layer and the logits). */
export function floatsPerPrompt(cfg: ModelConfig, p: number): number {
  const { nLayers: L, dModel: d, nHeads: H, dMlp: dm, dVocab: V } = cfg;
  return p * (L * (12 * d + 4 * H * p + 3 * dm) + 3 * V);
}

export interface SitePassOptions {
  readonly onProgress?: OnProgress;
  /** Float budget of one stacked pass (activations, estimated; default 2^25 ≈ 128 MB). */
  readonly stackBudget?: number;
  /** At most this many stacked copies per pass. */
  readonly maxStack?: number;
}

/** Stacked copies per pass for chunks of B prompts of p tokens. */
export function stackSize(cfg: ModelConfig, B: number, p: number, opts: Pick<SitePassOptions, 'stackBudget' | 'maxStack'> = {}): number {
  const budget = opts.stackBudget ?? 2 ** 25;
  return Math.max(1, Math.min(opts.maxStack ?? Infinity, Math.floor(budget / (B * floatsPerPrompt(cfg, p)))));
}

/** The chunk of prompts a pass ran on. */
export interface SitePassChunk {
  /** Position of its first prompt in the dataset, its size and its share of the dataset. */
  readonly offset: number;
  readonly size: number;
  readonly weight: number;
}

/**
 * Activation patching of sites, the loop that sweeps and per-example site evaluation share:
 * every site patched alone, in the patcher's direction and ablation (the other run's
 * activations, zero, or their dataset mean per position), copies of the batch stacked into one
 * forward pass (copy k patches site group[k]), chunk by chunk. Sites are grouped into passes in
 * `order`. `measure` turns a pass's logits into numbers (inside a tidy); `record` receives them.
 */
export function runSitePasses(
  patcher: Patcher,
  sites: readonly Site[],
  order: readonly number[],
  opts: SitePassOptions,
  measure: (logits: tf.Tensor, targets: MetricTargets) => tf.Tensor,
  record: (group: readonly number[], values: ArrayLike<number>, chunk: SitePassChunk) => void,
): { forwardPasses: number; cachePasses: number } {
  const model = patcher.engine.model;
  const cfg = model.cfg;
  const hookNames = [...new Set(sites.flatMap((s) => s.parts.map((p) => p.hook)))];
  let forwardPasses = 0;
  let cachePasses = 0;
  let nChunks = 0;
  patcher.forEachChunk(() => nChunks++);
  const total = sites.length * nChunks;
  let done = 0;
  opts.onProgress?.(0, total);
  const otherTokens = (chunk: { clean: { tokens: tf.Tensor2D }; corrupted: { tokens: tf.Tensor2D } }) => (patcher.direction === 'noise' ? chunk.corrupted.tokens : chunk.clean.tokens);

  // The dataset mean of the other run's activations (per position), for ablation 'mean'.
  const means = new Map<HookName, tf.Tensor>();
  try {
    if (patcher.ablation === 'mean' && hookNames.length > 0) {
      patcher.forEachChunk((chunk) => {
        const { logits, cache } = model.runWithCache(otherTokens(chunk), hookNames);
        cachePasses++;
        logits.dispose();
        for (const [name, act] of cache) {
          const prev = means.get(name);
          const sum = tf.tidy(() => (prev ? tf.add(prev, tf.sum(act, 0, true)) : tf.sum(act, 0, true)));
          prev?.dispose();
          act.dispose();
          means.set(name, sum);
        }
      });
      for (const [name, sum] of [...means]) {
        means.set(name, tf.tidy(() => tf.div(sum, patcher.nExamples)));
        sum.dispose();
      }
    }

    let offset = 0;
    patcher.forEachChunk((chunk) => {
      const at: SitePassChunk = { offset, size: chunk.size, weight: chunk.weight };
      offset += chunk.size;
      const B = chunk.size;
      const p = chunk.run.tokens.shape[1];
      let values: Map<HookName, tf.Tensor> | undefined;
      if (patcher.ablation === 'patch' && hookNames.length > 0) {
        const { logits, cache } = model.runWithCache(otherTokens(chunk), hookNames);
        cachePasses++;
        logits.dispose();
        values = cache;
      } else if (patcher.ablation === 'mean') {
        values = means;
      }
      try {
        const stack = stackSize(cfg, B, p, opts);
        for (let i = 0; i < order.length; ) {
          const group: number[] = [];
          while (i < order.length && group.length < stack) group.push(order[i++]);
          const v = tf.tidy(() => measure(stackedSiteForward(model, chunk.run, group.map((g) => sites[g]), values, B, p), chunk.targets));
          const data = v.dataSync();
          v.dispose();
          forwardPasses++;
          record(group, data, at);
          done += group.length;
          opts.onProgress?.(done, total);
        }
      } finally {
        if (patcher.ablation === 'patch') values?.forEach((t) => t.dispose());
      }
    });
  } finally {
    means.forEach((t) => t.dispose());
  }
  return { forwardPasses, cachePasses };
}
