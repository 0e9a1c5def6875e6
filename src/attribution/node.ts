import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import type { HookFn, HookName } from '../model/hooks.js';
import { HookBinding } from '../patching/binding.js';
import { type MetricName, MetricTargets, lastLogits, metricMean } from '../metrics/index.js';
import type { Ablation, Direction, PairData } from '../patching/patcher.js';
import type { CircuitGraph } from '../graph/graph.js';
import { CircuitryError } from '../errors.js';
import { checkData, checkDifferentiable } from './chunks.js';

/**
 * Node-level attribution patching (Nanda 2023): for an activation a,
 *   estimate = Σ (a_patch − a_run) · ∂M/∂a   at the run,
 * a first-order estimate of M(run with a patched) − M(run). noise: the run is clean and the patch
 * corrupted; denoise: the reverse. One forward pass of the other run and one forward + backward
 * pass of the run per chunk, for every node kind at once:
 * - heads: each head's output (attn.hook_result; computed as Σ Δz·∂M/∂z at attn.hook_z, which is
 *   equal because the output is z·W_O, linear),
 * - MLPs: hook_mlp_out; neurons: mlp.hook_post, one value per neuron,
 * - the residual stream by position: blocks.{l}.hook_resid_pre for every layer, then the final
 *   residual (ln_final's input), row `nLayers`; row 0 is the embeddings (the `input` node).
 *
 * Identities with EAP (tested): a source node's estimate is the sum of its outgoing edge scores;
 * row l of the residual stream, summed over positions, is the sum of the scores of the edges that
 * cross layer l (sources before it, destinations at or after it).
 */

export interface NodeAttributionOptions {
  readonly metric: MetricName;
  readonly direction?: Direction;
  readonly ablation?: Ablation;
  /** Also score every MLP neuron (default false). */
  readonly neurons?: boolean;
  /** Prompts per pass (default all, at most 32). */
  readonly batchSize?: number;
}

export interface NodeAttribution {
  readonly metric: MetricName;
  readonly direction: Direction;
  readonly ablation: Ablation;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly seqLen: number;
  /** The embeddings (the graph's `input` node): the sum of resid row 0. */
  readonly input: number;
  /** [nLayers × nHeads], layer-major. */
  readonly heads: Float32Array;
  /** [nLayers] (empty for attention-only models). */
  readonly mlps: Float32Array;
  /** [nLayers × dMlp] per neuron, when asked for. */
  readonly neurons?: Float32Array;
  /** [(nLayers + 1) × seqLen]: resid_pre of each layer by position, then the final residual. */
  readonly resid: Float32Array;
  readonly baseMetric: number;
  readonly patchedMetric?: number;
  readonly seconds: number;
}

export function attributeNodes(model: Transformer, data: PairData, opts: NodeAttributionOptions): NodeAttribution {
  const t0 = performance.now();
  checkData(data);
  checkDifferentiable(opts.metric);
  const direction = opts.direction ?? 'noise';
  const ablation = opts.ablation ?? 'patch';
  if (direction !== 'noise' && direction !== 'denoise') throw new CircuitryError(`direction: expected noise or denoise, got '${String(direction)}'`);
  if (ablation !== 'patch' && ablation !== 'zero' && ablation !== 'mean') throw new CircuitryError(`ablation: expected patch, zero or mean, got '${String(ablation)}'`);
  const { nLayers: L, nHeads: H, attnOnly, dMlp } = model.cfg;
  const neurons = opts.neurons ?? false;
  if (neurons && attnOnly) throw new CircuitryError('neuron attribution needs MLPs, but the model is attention-only');
  const n = data.clean.length;
  const p = data.clean[0].length;
  const bs = opts.batchSize ?? Math.min(n, 32);
  if (!Number.isInteger(bs) || bs < 1) throw new CircuitryError(`batch size: expected a positive integer, got ${bs}`);

  // hook name -> how to reduce Δ·g (axes summed) and where the result goes
  const bind = new HookBinding(model.cfg);
  type Slot = { kind: 'resid' | 'head' | 'mlp' | 'neurons'; row: number; axes: number[] };
  const slots = new Map<HookName, Slot>();
  for (let l = 0; l < L; l++) {
    slots.set(bind.residPre(l), { kind: 'resid', row: l, axes: [0, 2] }); // -> [p]
    slots.set(bind.headValues(l), { kind: 'head', row: l, axes: [0, 1, 3] }); // -> [H]
    if (!attnOnly) slots.set(bind.mlpOutput(l), { kind: 'mlp', row: l, axes: [0, 1, 2] }); // -> scalar
    if (neurons) slots.set(bind.mlpNeurons(l), { kind: 'neurons', row: l, axes: [0, 1] }); // -> [dMlp]
  }
  slots.set(bind.logitsInput, { kind: 'resid', row: L, axes: [0, 2] });
  const names = [...slots.keys()];

  const heads = new Float32Array(L * H);
  const mlps = new Float32Array(attnOnly ? 0 : L);
  const neuronScores = neurons ? new Float32Array(L * dMlp) : undefined;
  const resid = new Float32Array((L + 1) * p);
  const runRows = direction === 'noise' ? data.clean : data.corrupted;
  const otherRows = direction === 'noise' ? data.corrupted : data.clean;

  const capture = (rows: readonly (readonly number[])[]) => {
    const tokens = model.tokens(rows);
    try {
      return model.runWithCache(tokens, names, { lastPositionOnly: true });
    } finally {
      tokens.dispose();
    }
  };
  // mean ablation: the other run's activations averaged over the dataset (per position)
  let means: Map<HookName, tf.Tensor> | undefined;
  if (ablation === 'mean') {
    means = new Map();
    for (let s = 0; s < n; s += bs) {
      const { logits, cache } = capture(otherRows.slice(s, s + bs));
      logits.dispose();
      for (const [name, act] of cache) {
        const part = tf.tidy(() => tf.div(tf.sum(act, 0, true), n));
        const prev = means.get(name);
        means.set(name, prev ? tf.tidy(() => tf.add(prev, part)) : part);
        if (prev) tf.dispose([prev, part]);
        act.dispose();
      }
    }
  }

  let base = 0;
  let patched: number | undefined;
  try {
    for (let s = 0; s < n; s += bs) {
      const answers = data.answers.slice(s, s + bs);
      const b = answers.length;
      const owned: tf.Tensor[] = [];
      let other: Map<HookName, tf.Tensor> | undefined;
      let targets: MetricTargets | undefined;
      try {
        let otherLogits: tf.Tensor | undefined;
        if (ablation === 'patch') {
          const r = capture(otherRows.slice(s, s + bs));
          other = r.cache;
          otherLogits = r.logits;
          owned.push(r.logits);
        }
        let cleanLast: tf.Tensor2D | undefined;
        if (opts.metric === 'kl') {
          if (direction === 'denoise' && otherLogits) cleanLast = tf.tidy(() => lastLogits(otherLogits!));
          else {
            const tokens = model.tokens(data.clean.slice(s, s + bs));
            const logits = model.forward(tokens, { lastPositionOnly: true, lastQueryOnly: true });
            cleanLast = tf.tidy(() => lastLogits(logits));
            tf.dispose([tokens, logits]);
          }
          owned.push(cleanLast);
        }
        targets = new MetricTargets(answers, data.wrongs.slice(s, s + bs), model.cfg.dVocab, cleanLast);
        const tg = targets;
        if (otherLogits) {
          const v = metricMean(opts.metric, otherLogits, tg);
          patched = (patched ?? 0) + (v.dataSync()[0] * b) / n;
          v.dispose();
        }
        const runActs = new Map<HookName, tf.Tensor>();
        const keep: HookFn = (act, name) => {
          runActs.set(name, tf.keep(act.clone()));
        };
        const tokens = model.tokens(runRows.slice(s, s + bs));
        owned.push(tokens);
        let result;
        try {
          result = model.gradients(tokens, names, (logits) => metricMean(opts.metric, logits, tg), { hooks: new Map(names.map((nm) => [nm, keep])), lastPositionOnly: true });
        } catch (e) {
          runActs.forEach((t) => t.dispose());
          throw e;
        }
        base += (result.value * b) / n;
        for (const [name, slot] of slots) {
          const a = runActs.get(name)!;
          const g = result.grads.get(name)!;
          const values = tf.tidy(() => {
            const patchAct = ablation === 'patch' ? other!.get(name)! : ablation === 'zero' ? tf.zerosLike(a) : means!.get(name)!;
            return tf.sum(tf.mul(tf.sub(patchAct, a), g), slot.axes);
          });
          const v = values.dataSync();
          values.dispose();
          const layer = slot.row;
          if (slot.kind === 'resid') for (let i = 0; i < p; i++) resid[layer * p + i] += v[i];
          else if (slot.kind === 'head') for (let h = 0; h < H; h++) heads[layer * H + h] += v[h];
          else if (slot.kind === 'neurons') for (let i = 0; i < dMlp; i++) neuronScores![layer * dMlp + i] += v[i];
          else mlps[layer] += v[0];
        }
        runActs.forEach((t) => t.dispose());
        result.grads.forEach((t) => t.dispose());
      } finally {
        targets?.dispose();
        other?.forEach((t) => t.dispose());
        tf.dispose(owned);
      }
    }
  } finally {
    means?.forEach((t) => t.dispose());
  }
  let input = 0;
  for (let i = 0; i < p; i++) input += resid[i];
  return {
    metric: opts.metric,
    direction,
    ablation,
    nLayers: L,
    nHeads: H,
    seqLen: p,
    input,
    heads,
    mlps,
    ...(neuronScores ? { neurons: neuronScores } : {}),
    resid,
    baseMetric: base,
    ...(patched !== undefined ? { patchedMetric: patched } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Node scores in the graph's node order (input, a0.h0, …, m0, …, logits; logits NaN), for Circuit.nodeScores. */
export function nodeScoresForGraph(nodes: NodeAttribution, graph: CircuitGraph): Float32Array {
  const { nLayers: L, nHeads: H } = graph.shape;
  if (L !== nodes.nLayers || H !== nodes.nHeads) throw new CircuitryError(`node attribution of a ${nodes.nLayers}-layer, ${nodes.nHeads}-head model does not fit a ${L}-layer, ${H}-head graph`);
  const out = new Float32Array(graph.nSrc + 1).fill(Number.NaN);
  graph.sources.forEach((s, i) => {
    if (s.kind === 'input') out[i] = nodes.input;
    else if (s.kind === 'head') out[i] = nodes.heads[s.layer * H + s.head];
    else out[i] = nodes.mlps[s.layer];
  });
  return out;
}
