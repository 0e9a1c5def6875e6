import * as tf from '@tensorflow/tfjs';
import type { CircuitGraph } from '../graph/graph.js';
import type { Transformer } from '../model/transformer.js';
import { metricMean } from '../metrics/index.js';
import { Patcher } from '../patching/patcher.js';
import { CircuitryError } from '../errors.js';
import { fusedSupported } from './adapter.js';
import { bindGraph } from '../patching/binding.js';
import { type ChunkSource, type ChunkWork, checkDifferentiable, columnsOf, dataChunks, patcherChunks, promptsPerGradientPass, resolveRunOptions, sourceDifference, workParts } from './chunks.js';
import { EdgeGradients, type GradientPath, type GradientSum } from './gradients.js';
import type { AttributionInput, AttributionMethodKey, AttributionOptions, EdgeAttribution } from './types.js';

/**
 * Edge Attribution Patching (Syed et al. 2023) and the integrated-gradients variants of EAP-IG
 * (Hanna et al. 2024) and auto-circuit. Sign convention (DESIGN.md): for an edge u->d,
 *   score = Σ_{batch,pos,dim} (a_u(patch) − a_u(run)) · ∂M/∂x_d   (M the batch mean of the metric),
 * a first-order estimate of M(run with the edge patched) − M(run); rank edges by |score|.
 */

export const DEFAULT_STEPS = 5;

interface Setup {
  readonly model: Transformer;
  readonly graph: CircuitGraph;
  readonly run: ReturnType<typeof resolveRunOptions>;
  readonly path: GradientPath | 'mask';
}

function setup(input: AttributionInput, opts: AttributionOptions, method: AttributionMethodKey): Setup {
  const run = resolveRunOptions(input, opts);
  checkDifferentiable(run.metric);
  const model = 'patcher' in input ? input.patcher.engine.model : input.model;
  const graph = 'patcher' in input ? input.patcher.graph : input.graph;
  const choice = opts.gradient ?? 'auto';
  if (!['auto', 'fused', 'split', 'mask'].includes(choice)) throw new CircuitryError(`gradient: expected auto, fused, split or mask, got '${String(choice)}'`);
  const path = choice === 'auto' ? autoPath(model, graph, method) : choice;
  const pp = opts.passPrompts;
  if (pp !== undefined && !(Number.isInteger(pp) && pp >= 1)) throw new CircuitryError(`passPrompts: expected a positive integer, got ${String(pp)}`);
  return { model, graph, run, path };
}

/**
 * The gradient path `auto` picks: fused where the adapter supports the family, else split; EAP on a
 * model whose heads are patched inside a post-attention norm (Gemma-2) takes the mask gradient,
 * whose edge semantics are exact patching's (the gradient paths multiply raw head-output
 * differences, as EAP-IG's attribute does, and skip that norm's Jacobian).
 */
function autoPath(model: Transformer, graph: CircuitGraph, method: AttributionMethodKey): GradientPath | 'mask' {
  if (method === 'eap' && bindGraph(model.cfg, graph).facts.headsInsideNorm) return 'mask';
  return fusedSupported(model.cfg) ? 'fused' : 'split';
}

export function checkSteps(steps: number | undefined): number {
  const m = steps ?? DEFAULT_STEPS;
  if (!Number.isInteger(m) || m < 1 || m > 1000) throw new CircuitryError(`steps: expected an integer from 1 to 1000, got ${String(steps)}`);
  return m;
}

/**
 * An attribution run as a generator: it yields after every chunk of prompts (so that an async
 * driver can let Ctrl-C in and stop, see attributeEdgesAsync) and returns the result. Stopping it
 * early (`return()`) releases every tensor.
 */
export type AttributionRun = Generator<void, EdgeAttribution, void>;

/** Runs a generator to its end. */
export function runToEnd<T>(gen: Generator<void, T, void>): T {
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
  }
}

/** Runs `body` over the chunks with an EdgeGradients of the resolved path; collects the bookkeeping. */
function* withGradients(
  input: AttributionInput,
  opts: AttributionOptions,
  s: Setup,
  method: AttributionMethodKey,
  steps: number,
  passesPerChunk: number,
  body: (eg: EdgeGradients, work: ChunkWork, scores: Float32Array, tick: () => void) => number,
  stepsPerChunk = passesPerChunk,
  forwardOnlyPerChunk = 0,
): AttributionRun {
  const t0 = performance.now();
  const path = s.path as GradientPath;
  const eg = new EdgeGradients(s.model, s.graph, path);
  let chunks: ChunkSource | undefined;
  try {
    chunks = 'patcher' in input ? patcherChunks(input.patcher) : dataChunks(eg, input.data, { ...s.run, batchSize: opts.batchSize });
    const scores = new Float32Array(s.graph.denseSize);
    let base = 0;
    let patched: number | undefined;
    let done = 0;
    const total = chunks.nChunks * stepsPerChunk;
    const tick = () => opts.onProgress?.(++done, total);
    for (const work of chunks.each()) {
      const maxPrompts = opts.passPrompts ?? promptsPerGradientPass(s.model.cfg, work.tokens.shape[1]);
      // a large chunk runs in parts (memory); progress moves with the chunk's last part
      const parts = Math.ceil(work.tokens.shape[0] / maxPrompts);
      let i = 0;
      for (const part of workParts(work, maxPrompts)) base += part.weight * body(eg, part, scores, ++i === parts ? tick : () => {});
      if (work.patchedMetric !== undefined) patched = (patched ?? 0) + work.weight * work.patchedMetric;
      yield;
    }
    const gradientPasses = chunks.nChunks * passesPerChunk;
    return {
      method,
      graph: s.graph,
      scores,
      ...s.run,
      steps,
      gradient: path,
      baseMetric: base,
      ...(patched !== undefined ? { patchedMetric: patched } : {}),
      nExamples: chunks.nExamples,
      forwardPasses: chunks.forwardPasses + gradientPasses + chunks.nChunks * forwardOnlyPerChunk,
      backwardPasses: gradientPasses,
      seconds: (performance.now() - t0) / 1000,
      warnings: warningsFor(s, method),
    };
  } finally {
    chunks?.dispose();
    eg.dispose();
  }
}

function warningsFor(s: Setup, method: AttributionMethodKey): string[] {
  if (s.run.metric === 'kl' && method === 'eap' && s.run.direction === 'noise') {
    return ["KL divergence from the clean run has zero gradient at the clean run, so noising EAP scores vanish; use eap-ig (or --direction denoise) with kl"];
  }
  return [];
}

const metricScalar = (work: ChunkWork, metric: Setup['run']['metric']) => (logits: tf.Tensor) => metricMean(metric, logits, work.targets);

/** Adds weight · Σ Δ·∂M/∂x_d for every edge to `scores`, Δ = patch − run sources (the sum is spent). */
function contractSum(eg: EdgeGradients, work: ChunkWork, runSources: tf.Tensor2D, sum: GradientSum, scores: Float32Array, weight: number): void {
  const delta = sourceDifference(work, runSources);
  try {
    eg.contractSum(delta, sum, scores, weight);
  } finally {
    delta.dispose();
  }
}

/**
 * EAP: one forward pass of the other run (its source outputs) and one forward + backward pass of
 * the run; with `gradient: 'mask'`, minus the masked engine's gradient at m = 1 instead.
 */
export function eap(input: AttributionInput, opts: AttributionOptions = {}): EdgeAttribution {
  return runToEnd(eapRun(input, opts));
}

/** eap, one chunk per step. */
export function* eapRun(input: AttributionInput, opts: AttributionOptions = {}): AttributionRun {
  const s = setup(input, opts, 'eap');
  if (s.path === 'mask') return yield* maskIntegrated(input, opts, s, 'eap', 1);
  return yield* withGradients(input, opts, s, 'eap', 1, 1, (eg, work, scores, tick) => {
    const pass = eg.gradientPass(work.tokens, metricScalar(work, s.run.metric), { captureSources: !work.runSources });
    try {
      contractSum(eg, work, work.runSources ?? pass.sources!, pass.sum, scores, work.weight);
    } finally {
      pass.sum.dispose();
      pass.sources?.dispose();
    }
    tick();
    return pass.value;
  });
}

/**
 * EAP-IG, inputs variant (Hanna et al. 2024): the `input` node's output (the residual entering
 * block 0: embeddings plus learned positions, or the scaled embedding of a rotary model) is
 * interpolated from the patch run's to the run's, x(α) = patch + α(run − patch); the gradients at
 * every destination input are averaged over the m steps and contracted with the source differences
 * of the two real runs. The steps (`interpolation`): `eap-ig` (default) takes α = k/m,
 * k = 0..m − 1, as EAP-IG's attribute.py does, so the scores are EAP-IG's; `run` takes α = k/m,
 * k = 1..m, so α = 1 is the run itself and m = 1 is EAP. Cost: the other run's forward pass and m
 * forward + backward passes (`eap-ig`: one more forward pass for the run's own sources, unless cached).
 */
export function eapIg(input: AttributionInput, opts: AttributionOptions = {}): EdgeAttribution {
  return runToEnd(eapIgRun(input, opts));
}

/** eapIg, one chunk per step. */
export function* eapIgRun(input: AttributionInput, opts: AttributionOptions = {}): AttributionRun {
  const s = setup(input, opts, 'eap-ig');
  const m = checkSteps(opts.steps);
  if (s.path === 'mask') throw new CircuitryError("eap-ig interpolates the input embeddings, which the mask gradient does not do; use gradient 'fused' or 'split' (or method eap-ig-activations)");
  if (opts.stepBatch !== undefined && !(Number.isInteger(opts.stepBatch) && opts.stepBatch >= 1)) throw new CircuitryError(`stepBatch: expected a positive integer, got ${String(opts.stepBatch)}`);
  const rule = opts.interpolation ?? 'eap-ig';
  if (rule !== 'run' && rule !== 'eap-ig') throw new CircuitryError(`interpolation: expected run or eap-ig, got '${String(rule)}'`);
  let [prompts, seqLen] = [0, 1];
  if ('patcher' in input) input.patcher.forEachChunk((c) => ([prompts, seqLen] = [Math.max(prompts, c.run.tokens.shape[0]), c.run.tokens.shape[1]]));
  else [prompts, seqLen] = [Math.min(input.data.clean.length, opts.batchSize ?? 32), input.data.clean[0]?.length ?? 1];
  // tokens per gradient pass of one step: a chunk's, or its parts' (withGradients)
  const tokensPerChunk = Math.min(prompts, opts.passPrompts ?? promptsPerGradientPass(s.model.cfg, seqLen)) * seqLen;
  // the steps run with a replaced input: all m of them (eap-ig), or all but α = 1 (run)
  const replaced = rule === 'run' ? Array.from({ length: m - 1 }, (_, i) => (i + 1) / m) : Array.from({ length: m }, (_, k) => k / m);
  const perPass = Math.max(1, Math.min(Math.max(1, replaced.length), opts.stepBatch ?? defaultStepBatch(s.model, tokensPerChunk)));
  const groups = Math.ceil(replaced.length / perPass);
  const passes = (rule === 'run' ? 1 : 0) + groups;
  return yield* withGradients(input, opts, s, 'eap-ig', m, passes, (eg, work, scores, tick) => {
    const scalar = metricScalar(work, s.run.metric);
    let value: number;
    let runSources: tf.Tensor2D;
    let acc: GradientSum | undefined;
    const owned: tf.Tensor[] = [];
    if (rule === 'run') {
      // α = 1 first: it is the run itself and gives the run's sources
      const first = eg.gradientPass(work.tokens, scalar, { captureSources: !work.runSources });
      tick();
      value = first.value;
      runSources = work.runSources ?? first.sources!;
      if (first.sources) owned.push(first.sources);
      acc = first.sum;
    } else {
      const fs = eg.forwardSources(work.tokens);
      const v = scalar(fs.logits);
      value = v.dataSync()[0];
      tf.dispose([v, fs.logits]);
      owned.push(fs.sources);
      runSources = work.runSources ?? fs.sources;
    }
    try {
      if (replaced.length > 0) {
        const [b, p] = work.tokens.shape;
        const shape = [b, p, s.model.cfg.dModel];
        // the input node's row, over the work's prompts
        const row0 = (t: tf.Tensor2D) => {
          const { from, count } = columnsOf(work, t);
          return tf.reshape(tf.slice(t, [0, from], [1, count]), shape);
        };
        const patch0 = tf.tidy(() => row0(work.patch));
        const diff0 = tf.tidy(() => tf.sub(row0(runSources), patch0));
        try {
          // `perPass` steps stacked in the batch of one pass
          for (let i0 = 0; i0 < replaced.length; i0 += perPass) {
            const alphas = replaced.slice(i0, i0 + perPass);
            const n = alphas.length;
            const x = tf.tidy(() => tf.concat(alphas.map((alpha) => tf.add(patch0, tf.mul(diff0, alpha))), 0));
            const tokens = n === 1 ? work.tokens : (tf.tile(work.tokens, [n, 1]) as tf.Tensor2D);
            // Σ over the stacked steps of each step's batch-mean metric
            const stacked = n === 1 ? scalar : (logits: tf.Tensor) => tf.tidy(() => tf.mul(scalar(logits), n) as tf.Scalar);
            try {
              acc = eg.gradientPass(tokens, stacked, { input: x, copies: n }, acc).sum;
            } finally {
              x.dispose();
              if (tokens !== work.tokens) tokens.dispose();
            }
            alphas.forEach(() => tick());
          }
        } finally {
          tf.dispose([patch0, diff0]);
        }
      }
      contractSum(eg, work, runSources, acc!, scores, work.weight / m);
    } finally {
      acc?.dispose();
      tf.dispose(owned);
    }
    return value;
  }, m, rule === 'eap-ig' ? 1 : 0);
}

/**
 * IG steps stacked per pass by default: as many as keep a pass's autodiff tape near 2^26 floats
 * (256 MiB), estimated at 250·L·d floats per token (measured on GPT-2 small with wasm: ~9 MiB per
 * token; the logits are the last position's only). Stacking saves per-op overhead, which matters
 * for small chunks only (measured: no gain at 256 tokens of d 256); GPT-2 small runs one step per pass.
 */
function defaultStepBatch(model: Transformer, tokensPerChunk: number): number {
  const { dModel, nLayers } = model.cfg;
  return Math.max(1, Math.floor(2 ** 26 / (250 * nLayers * dModel * tokensPerChunk)));
}

/**
 * EAP-IG on activations, as auto-circuit's integrated gradients on masks: every edge's mask is set
 * to m_k = k/m (k = 1..m; m = 1 keeps the edge, so x_d = resid + (1 − m_k)·Σ_u (patch_u − current_u)),
 * and the score is minus the mask gradient averaged over the m values. m = 1 is EAP. Runs on the
 * masked engine (a Patcher is built when none is given).
 */
export function eapIgActivations(input: AttributionInput, opts: AttributionOptions = {}): EdgeAttribution {
  return runToEnd(eapIgActivationsRun(input, opts));
}

/** eapIgActivations, one mask value per step. */
export function* eapIgActivationsRun(input: AttributionInput, opts: AttributionOptions = {}): AttributionRun {
  const s = setup(input, opts, 'eap-ig-activations');
  return yield* maskIntegrated(input, opts, s, 'eap-ig-activations', checkSteps(opts.steps));
}

function* maskIntegrated(input: AttributionInput, opts: AttributionOptions, s: Setup, method: AttributionMethodKey, m: number): AttributionRun {
  const t0 = performance.now();
  const own = !('patcher' in input);
  const patcher = 'patcher' in input ? input.patcher : new Patcher(input.model, input.graph, input.data, { ...s.run, batchSize: opts.batchSize ?? 32 });
  try {
    const passes0 = patcher.forwardPasses;
    const scores = new Float32Array(s.graph.denseSize);
    let base = 0;
    for (let k = 1; k <= m; k++) {
      const { value, grad } = patcher.maskGradient(s.graph.denseEdgeArray(k / m));
      for (let i = 0; i < scores.length; i++) scores[i] -= grad[i] / m;
      if (k === m) base = value;
      opts.onProgress?.(k, m);
      yield;
    }
    const gradientPasses = (patcher.forwardPasses - passes0) / 2;
    let chunks = 0;
    patcher.forEachChunk(() => chunks++);
    return {
      method,
      graph: s.graph,
      scores,
      ...s.run,
      steps: m,
      gradient: 'mask',
      baseMetric: base,
      ...(s.run.ablation === 'patch' ? { patchedMetric: patcher.fullyPatchedMetric } : {}),
      nExamples: patcher.nExamples,
      // a Patcher built here ran both prompts of each chunk once
      forwardPasses: gradientPasses + (own ? 2 * chunks : 0),
      backwardPasses: gradientPasses,
      seconds: (performance.now() - t0) / 1000,
      warnings: warningsFor(s, method),
    };
  } finally {
    if (own) patcher.dispose();
  }
}
