import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { hookShape } from '../model/transformer.js';
import { metricPerExample } from '../metrics/index.js';
import type { Patcher } from '../patching/patcher.js';
import type { PlannedComponent } from '../patching/sweeps.js';
import { CircuitryError } from '../errors.js';
import { type Site, type SitePart, siteLayer } from '../patching/stacked.js';
import { floatsPerPrompt, runSitePasses, stackSize, type SitePassOptions } from '../patching/site-passes.js';

export { floatsPerPrompt, siteLayer, stackSize, type Site, type SitePart };

/**
 * Activation patching of arbitrary sites with per-example results. A site is one or more
 * (hook, selection) parts patched together: a whole layer's attention output, one position of
 * it, a head at a position, a neuron at a position, a block's output (attention and MLP at
 * once). Sites are patched in the patcher's direction and ablation, as runSweep does, and many
 * are stacked into one forward pass (copy k of the batch patches site k). Unlike runSweep, the
 * metric is kept per example, which significance tests and hierarchical search need.
 */

export type SiteEvaluationOptions = SitePassOptions;

export interface SiteEvaluation {
  /** Per site, the patched metric of every example (dataset order). */
  readonly perExample: readonly Float64Array[];
  /** Per site, the dataset mean. */
  readonly mean: readonly number[];
  /** The metric of every example on the unpatched run the patches start from. */
  readonly base: Float64Array;
  readonly forwardPasses: number;
  /** Unpatched passes that recorded the values to patch in. */
  readonly cachePasses: number;
}

/** A sweep plan's components as sites (one part each). */
export function sitesOfPlan(components: readonly PlannedComponent[]): Site[] {
  return components.map((c) => ({ name: c.name, parts: [{ hook: c.site.hook, select: c.site.select }] }));
}


/** Checks a site against the model: known hooks, selections of the right rank, indices in range. */
export function checkSite(site: Site, cfg: ModelConfig, seqLen: number): void {
  if (site.parts.length === 0) throw new CircuitryError(`site '${site.name}': no hook to patch`);
  for (const part of site.parts) {
    const rest = hookShape(part.hook, cfg, 1, seqLen).slice(1);
    if (part.select.length !== rest.length) {
      throw new CircuitryError(`site '${site.name}': hook ${part.hook} has ${rest.length} axes after the batch ([${rest}]) but the selection has ${part.select.length}`);
    }
    part.select.forEach((s, ax) => {
      if (s !== null && !(Number.isInteger(s) && s >= 0 && s < rest[ax])) {
        throw new CircuitryError(`site '${site.name}': index ${s} on axis ${ax + 1} of ${part.hook} is out of range (0..${rest[ax] - 1})`);
      }
    });
  }
}

/** The patcher's chunks with their offsets in the dataset. */
export function chunksOf(patcher: Patcher): { offset: number; size: number }[] {
  const out: { offset: number; size: number }[] = [];
  let offset = 0;
  patcher.forEachChunk((c) => {
    out.push({ offset, size: c.size });
    offset += c.size;
  });
  return out;
}

/** The patcher's prompt length. */
export function seqLenOf(patcher: Patcher): number {
  let p = 0;
  patcher.forEachChunk(({ run }) => (p = run.tokens.shape[1]));
  return p;
}

/** The per-example metric of the unpatched run the patcher starts from (clean when noising). */
export function baseMetricPerExample(patcher: Patcher): Float64Array {
  const out = new Float64Array(patcher.nExamples);
  let offset = 0;
  patcher.forEachChunk((chunk) => {
    const v = metricPerExample(patcher.metric, chunk.run.logits, chunk.targets);
    out.set(v.dataSync(), offset);
    v.dispose();
    offset += chunk.size;
  });
  return out;
}

/**
 * Patches every site alone over the whole dataset and records the metric per example. Sites
 * are visited from the lowest layer up, so each stacked pass starts at its lowest site's layer
 * from the cached residual stream.
 */
export function evaluateSites(patcher: Patcher, sites: readonly Site[], opts: SiteEvaluationOptions = {}): SiteEvaluation {
  const seqLen = seqLenOf(patcher);
  for (const s of sites) checkSite(s, patcher.engine.model.cfg, seqLen);
  const n = patcher.nExamples;
  const perExample = sites.map(() => new Float64Array(n));
  const base = baseMetricPerExample(patcher);
  const layers = sites.map(siteLayer);
  const order = sites.map((_, i) => i).sort((a, b) => layers[a] - layers[b] || a - b);
  const { forwardPasses, cachePasses } = runSitePasses(patcher, sites, order, opts, (logits, targets) => metricPerExample(patcher.metric, logits, targets), (group, data, chunk) => {
    group.forEach((g, k) => {
      for (let b = 0; b < chunk.size; b++) perExample[g][chunk.offset + b] = data[k * chunk.size + b];
    });
  });
  const mean = perExample.map((row) => row.reduce((a, b) => a + b, 0) / n);
  return { perExample, mean, base, forwardPasses, cachePasses };
}

/**
 * Single-edge patching with per-example results: for each edge, the masked engine's metric on
 * every example with only that edge patched.
 */
export function evaluateEdges(patcher: Patcher, edgeNames: readonly string[], opts: SiteEvaluationOptions & { maxRows?: number } = {}): SiteEvaluation {
  const g = patcher.graph;
  const n = patcher.nExamples;
  const edges = edgeNames.map((name) => g.edge(name));
  const perExample = edges.map(() => new Float64Array(n));
  const base = baseMetricPerExample(patcher);
  const engine = patcher.engine;
  const L = engine.model.cfg.nLayers;
  const masks = edges.map((e) => {
    const m = patcher.fullMask();
    m[e.index] = 0;
    return m;
  });
  const starts = masks.map((m) => Math.min(L - 1, engine.firstPatchedLayer(m)));
  const order = masks.map((_, i) => i).sort((a, b) => starts[a] - starts[b] || a - b);
  const chunks = chunksOf(patcher);
  let forwardPasses = 0;
  const total = edges.length * chunks.length;
  let done = 0;
  opts.onProgress?.(0, total);
  let ci = 0;
  patcher.forEachChunk((chunk) => {
    const { offset } = chunks[ci++];
    const B = chunk.size;
    const perCopy = chunk.patch.size / B;
    const stack = Math.max(1, Math.min(opts.maxStack ?? Infinity, Math.floor((opts.maxRows ?? 256) / B), Math.floor((opts.stackBudget ?? 2 ** 26) / (perCopy * B * 3))));
    for (let i = 0; i < order.length; ) {
      const start = starts[order[i]];
      const group: number[] = [];
      while (i < order.length && group.length < stack && starts[order[i]] === start) group.push(order[i++]);
      const v = tf.tidy(() => {
        const flat = new Float32Array(group.length * g.denseSize);
        group.forEach((e, k) => flat.set(masks[e], k * g.denseSize));
        const maskT = tf.tensor3d(flat, [group.length, g.nDst, g.nSrc]);
        const logits = engine.maskedForward({ run: chunk.run, patch: chunk.patch, masks: maskT, startAtLayer: start });
        return metricPerExample(patcher.metric, logits, chunk.targets);
      });
      const data = v.dataSync();
      v.dispose();
      forwardPasses++;
      group.forEach((e, k) => {
        for (let b = 0; b < B; b++) perExample[e][offset + b] = data[k * B + b];
      });
      done += group.length;
      opts.onProgress?.(done, total);
    }
  });
  const mean = perExample.map((row) => row.reduce((a, b) => a + b, 0) / n);
  return { perExample, mean, base, forwardPasses, cachePasses: 0 };
}
