import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { type HookFn, type HookName, parseHookName } from '../model/hooks.js';
import { hookShape } from '../model/transformer.js';
import { metricPerExample } from '../metrics/index.js';
import type { Patcher } from '../patching/patcher.js';
import type { PlannedComponent } from '../patching/sweeps.js';
import type { OnProgress } from '../patching/progress.js';
import { CircuitryError } from '../errors.js';

/**
 * Activation patching of arbitrary sites with per-example results. A site is one or more
 * (hook, selection) parts patched together: a whole layer's attention output, one position of
 * it, a head at a position, a neuron at a position, a block's output (attention and MLP at
 * once). Sites are patched in the patcher's direction and ablation, as runSweep does, and many
 * are stacked into one forward pass (copy k of the batch patches site k). Unlike runSweep, the
 * metric is kept per example, which significance tests and hierarchical search need.
 */

/** Part of a site: a hook and, per activation axis after the batch, an index or null (all). */
export interface SitePart {
  readonly hook: HookName;
  readonly select: readonly (number | null)[];
}

export interface Site {
  readonly name: string;
  readonly parts: readonly SitePart[];
}

export interface SiteEvaluationOptions {
  readonly onProgress?: OnProgress;
  /** Float budget of one stacked pass (activations, estimated; default 2^25 ≈ 128 MB). */
  readonly stackBudget?: number;
  /** At most this many stacked copies per pass. */
  readonly maxStack?: number;
}

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

/** The lowest layer a site touches (-1 for embedding hooks). */
export function siteLayer(site: Site): number {
  return Math.min(...site.parts.map((p) => parseHookName(p.hook)?.layer ?? -1));
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

/** Estimated floats a forward pass holds per prompt (activations of every layer and the logits). */
export function floatsPerPrompt(cfg: ModelConfig, p: number): number {
  const { nLayers: L, dModel: d, nHeads: H, dMlp: dm, dVocab: V } = cfg;
  return p * (L * (12 * d + 4 * H * p + 3 * dm) + 3 * V);
}

/** Stacked copies per pass for chunks of B prompts of p tokens. */
export function stackSize(cfg: ModelConfig, B: number, p: number, opts: Pick<SiteEvaluationOptions, 'stackBudget' | 'maxStack'> = {}): number {
  const budget = opts.stackBudget ?? 2 ** 25;
  return Math.max(1, Math.min(opts.maxStack ?? Infinity, Math.floor(budget / (B * floatsPerPrompt(cfg, p)))));
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
  const model = patcher.engine.model;
  const cfg = model.cfg;
  const seqLen = seqLenOf(patcher);
  for (const s of sites) checkSite(s, cfg, seqLen);
  const n = patcher.nExamples;
  const perExample = sites.map(() => new Float64Array(n));
  const base = baseMetricPerExample(patcher);
  const hookNames = [...new Set(sites.flatMap((s) => s.parts.map((p) => p.hook)))];
  const layers = sites.map(siteLayer);
  const order = sites.map((_, i) => i).sort((a, b) => layers[a] - layers[b] || a - b);
  const chunks = chunksOf(patcher);
  let forwardPasses = 0;
  let cachePasses = 0;
  const total = sites.length * chunks.length;
  let done = 0;
  opts.onProgress?.(0, total);
  const otherTokens = (chunk: { clean: { tokens: tf.Tensor2D }; corrupted: { tokens: tf.Tensor2D } }) => (patcher.direction === 'noise' ? chunk.corrupted.tokens : chunk.clean.tokens);

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
        means.set(name, tf.tidy(() => tf.div(sum, n)));
        sum.dispose();
      }
    }
    let ci = 0;
    patcher.forEachChunk((chunk) => {
      const { offset } = chunks[ci++];
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
          const v = tf.tidy(() => {
            const logits = stackedSiteForward(patcher, chunk.run, group.map((g) => sites[g]), values, B, p);
            return metricPerExample(patcher.metric, logits, chunk.targets);
          });
          const data = v.dataSync();
          v.dispose();
          forwardPasses++;
          group.forEach((g, k) => {
            for (let b = 0; b < B; b++) perExample[g][offset + b] = data[k * B + b];
          });
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
  const mean = perExample.map((row) => row.reduce((a, b) => a + b, 0) / n);
  return { perExample, mean, base, forwardPasses, cachePasses };
}

/**
 * One pass of K stacked copies of the run's prompts, copy k patching site k. Values to patch
 * in are [B, …] (the other run), [1, …] (a mean) or absent (zero ablation).
 */
function stackedSiteForward(
  patcher: Patcher,
  run: { tokens: tf.Tensor2D; residPre: readonly tf.Tensor[] },
  group: readonly Site[],
  values: ReadonlyMap<HookName, tf.Tensor> | undefined,
  B: number,
  p: number,
): tf.Tensor {
  const model = patcher.engine.model;
  const cfg = model.cfg;
  const K = group.length;
  const start = Math.max(0, Math.min(...group.map(siteLayer)));
  const hooks = new Map<HookName, HookFn>();
  for (const name of new Set(group.flatMap((s) => s.parts.map((x) => x.hook)))) {
    const rest = hookShape(name, cfg, B, p).slice(1);
    const mask = copyMask(group, name, rest);
    const value = values?.get(name);
    hooks.set(name, (act) => {
      const a = tf.reshape(act, [K, B, ...rest]);
      // a + mask·(value − a): the patched value in the selected entries of the copies that patch here
      const out = value ? tf.add(a, tf.mul(mask, tf.sub(tf.expandDims(value, 0), a))) : tf.sub(a, tf.mul(mask, a));
      return tf.reshape(out, act.shape);
    });
  }
  const tokens = K === 1 || start > 0 ? run.tokens : (tf.tile(run.tokens, [K, 1]) as tf.Tensor2D);
  let residual: tf.Tensor | undefined;
  if (start > 0) {
    const r = run.residPre[start];
    residual = K === 1 ? r : tf.reshape(tf.add(tf.expandDims(r, 0), tf.zeros([K, 1, 1, 1])), [K * B, p, cfg.dModel]);
  }
  return model.forward(tokens, { hooks, startAtLayer: start, residual });
}

/**
 * [K, 1, …] with 1 where copy k patches at hook `name`. Axes no part of the group selects stay
 * of size 1 and broadcast.
 */
function copyMask(group: readonly Site[], name: HookName, rest: readonly number[]): tf.Tensor {
  const selections = group.map((s) => s.parts.filter((x) => x.hook === name).map((x) => x.select));
  const shape = rest.map((len, ax) => (selections.some((sels) => sels.some((sel) => sel[ax] !== null)) ? len : 1));
  const size = shape.reduce((a, b) => a * b, 1);
  const strides = shape.map((_, ax) => shape.slice(ax + 1).reduce((a, b) => a * b, 1));
  const data = new Float32Array(group.length * size);
  selections.forEach((sels, k) => {
    for (const sel of sels) {
      for (let f = 0; f < size; f++) {
        let ok = true;
        for (let ax = 0; ax < shape.length && ok; ax++) {
          const want = sel[ax];
          if (want !== null && Math.floor(f / strides[ax]) % shape[ax] !== want) ok = false;
        }
        if (ok) data[k * size + f] = 1;
      }
    }
  });
  return tf.tensor(data, [group.length, 1, ...shape]);
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
