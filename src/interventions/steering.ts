import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import { type BlockHook, type HookFn, type HookName, blockHook } from '../model/hooks.js';
import { CircuitryError } from '../errors.js';

/**
 * Activation steering by activation addition (ActAdd, Turner et al. 2023): a steering vector is
 * the difference of mean activations at one hook between a positive and a negative prompt set
 * (or one contrast pair), and steering adds strength × vector to that hook's activation at every
 * position or at chosen ones. Each prompt contributes its last position's activation (`last`,
 * default) or the mean over its positions (`mean`); prompts may differ in length.
 */

/** Hooks a vector can be read from and added to (all [batch, pos, width]). */
export const STEER_HOOKS = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'mlp_pre', 'mlp_post'] as const;
export type SteerHook = (typeof STEER_HOOKS)[number];

const HOOK_OF: Record<SteerHook, BlockHook> = {
  resid_pre: 'hook_resid_pre',
  resid_mid: 'hook_resid_mid',
  resid_post: 'hook_resid_post',
  attn_out: 'hook_attn_out',
  mlp_out: 'hook_mlp_out',
  mlp_pre: 'mlp.hook_pre',
  mlp_post: 'mlp.hook_post',
};

export type Reduce = 'last' | 'mean';

export interface SteeringVector {
  readonly hook: HookName;
  readonly layer: number;
  readonly vector: Float32Array;
  readonly reduce: Reduce;
  readonly nPositive: number;
  readonly nNegative: number;
}

/** `resid_pre` (or a full hook name such as blocks.3.hook_resid_pre) at `layer`, checked against the model. */
export function steeringHookName(model: Transformer, layer: number, hook: string = 'resid_pre'): HookName {
  const { nLayers: L, attnOnly } = model.cfg;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new CircuitryError(`layer ${String(layer)} is out of range: the model has layers 0..${L - 1}`);
  if (!(STEER_HOOKS as readonly string[]).includes(hook)) throw new CircuitryError(`hook '${hook}': expected one of ${STEER_HOOKS.join(', ')}`);
  if (attnOnly && hook.startsWith('mlp')) throw new CircuitryError(`hook '${hook}' does not exist: the model is attention-only`);
  return blockHook(layer, HOOK_OF[hook as SteerHook]);
}

/** The width of a steerable hook's activation (d_model or d_mlp). */
export function hookWidth(model: Transformer, hook: HookName): number {
  return hook.endsWith('mlp.hook_pre') || hook.endsWith('mlp.hook_post') ? model.cfg.dMlp : model.cfg.dModel;
}

/**
 * Per prompt, the activation at `hook` reduced over positions: [n, width]. Prompts of one length
 * run as one batch.
 */
export function promptActivations(model: Transformer, prompts: readonly (readonly number[])[], hook: HookName, reduce: Reduce = 'last', where = 'prompt set'): tf.Tensor2D {
  if (prompts.length === 0) throw new CircuitryError(`${where}: no prompts`);
  const byLength = new Map<number, number[]>();
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new CircuitryError(`${where}: prompt ${i} is empty`);
    if (!byLength.has(p.length)) byLength.set(p.length, []);
    byLength.get(p.length)!.push(i);
  });
  const rows = new Array<tf.Tensor>(prompts.length);
  const layer = Number(/^blocks\.(\d+)\./.exec(hook)?.[1] ?? 0);
  try {
    for (const [, idx] of byLength) {
      let batchTokens: tf.Tensor2D;
      try {
        batchTokens = model.tokens(idx.map((i) => prompts[i]));
      } catch (e) {
        throw e instanceof CircuitryError ? new CircuitryError(`${where}: ${e.message}`) : e;
      }
      const { logits, cache } = model.runWithCache(batchTokens, [hook], { stopAtLayer: Math.min(model.cfg.nLayers, layer + 1) });
      logits.dispose();
      batchTokens.dispose();
      const act = cache.get(hook)!;
      const reduced = tf.tidy(() => {
        const [b, p, w] = act.shape;
        return reduce === 'last' ? tf.reshape(tf.slice(act, [0, p - 1, 0], [b, 1, w]), [b, w]) : tf.mean(act, 1);
      });
      act.dispose();
      const parts = tf.split(reduced, idx.length, 0);
      reduced.dispose();
      idx.forEach((i, j) => (rows[i] = parts[j]));
    }
    return tf.tidy(() => tf.concat(rows, 0) as tf.Tensor2D);
  } finally {
    tf.dispose(rows.filter((r) => r !== undefined));
  }
}

/**
 * mean(positive) − mean(negative) of two sets of activations, each [n, width] (or [width] for
 * one prompt). The sets must come from hooks of one width.
 */
export function meanDifference(positive: tf.Tensor, negative: tf.Tensor): Float32Array {
  const shape = (t: tf.Tensor) => (t.rank === 1 ? [1, t.shape[0]] : t.shape);
  const ps = shape(positive);
  const ns = shape(negative);
  if (ps.length !== 2 || ns.length !== 2) throw new CircuitryError(`prompt sets: activations must be [prompts, width], got [${positive.shape}] and [${negative.shape}]`);
  if (ps[1] !== ns[1]) {
    throw new CircuitryError(`prompt sets of different hook shapes: the positive set's activations are ${ps[1]} wide but the negative set's are ${ns[1]}; read both at one hook`);
  }
  return tf.tidy(() => {
    const mean = (t: tf.Tensor) => tf.mean(tf.reshape(t, [-1, ps[1]]), 0);
    return tf.sub(mean(positive), mean(negative)).dataSync() as Float32Array;
  });
}

/** The ActAdd vector at `hook` of `layer`: mean activation of the positive prompts minus that of the negative ones. */
export function steeringVector(
  model: Transformer,
  positive: readonly (readonly number[])[],
  negative: readonly (readonly number[])[],
  opts: { readonly layer: number; readonly hook?: SteerHook; readonly reduce?: Reduce },
): SteeringVector {
  const hook = steeringHookName(model, opts.layer, opts.hook ?? 'resid_pre');
  const reduce = opts.reduce ?? 'last';
  if (reduce !== 'last' && reduce !== 'mean') throw new CircuitryError(`reduce: expected last or mean, got '${String(reduce)}'`);
  const pos = promptActivations(model, positive, hook, reduce, 'positive prompts');
  try {
    const neg = promptActivations(model, negative, hook, reduce, 'negative prompts');
    try {
      return { hook, layer: opts.layer, vector: meanDifference(pos, neg), reduce, nPositive: positive.length, nNegative: negative.length };
    } finally {
      neg.dispose();
    }
  } finally {
    pos.dispose();
  }
}

export interface SteerOptions {
  /** Multiplier of the vector (0 changes nothing). */
  readonly strength: number;
  /** Positions to add at (default all, including generated ones). */
  readonly positions?: readonly number[];
}

/**
 * The hook that adds strength × vector at the chosen positions. The vector's width must be the
 * hook's; positions must lie within `seqLen` (the prompt).
 */
export function steeringHooks(model: Transformer, sv: Pick<SteeringVector, 'hook' | 'vector'>, opts: SteerOptions, seqLen: number): Map<HookName, HookFn> {
  const width = hookWidth(model, sv.hook);
  if (sv.vector.length !== width) {
    throw new CircuitryError(`steering vector of width ${sv.vector.length} does not fit ${sv.hook}, whose activations are ${width} wide`);
  }
  if (!Number.isFinite(opts.strength)) throw new CircuitryError(`strength: expected a finite number, got ${String(opts.strength)}`);
  for (const x of sv.vector) if (!Number.isFinite(x)) throw new CircuitryError('steering vector: every entry must be a finite number');
  const positions = opts.positions;
  if (positions) {
    if (positions.length === 0) throw new CircuitryError('positions: give at least one position (or none for all)');
    for (const p of positions) {
      if (!Number.isInteger(p) || p < 0 || p >= seqLen) throw new CircuitryError(`positions: position ${p} is outside the prompt (positions 0..${seqLen - 1})`);
    }
  }
  const vector = sv.vector;
  const s = opts.strength;
  const hook: HookFn = (act) => {
    const [, p, w] = act.shape;
    const add = tf.mul(tf.tensor1d(vector), s); // [w]
    if (!positions) return tf.add(act, add);
    const mask = new Float32Array(p);
    for (const q of positions) if (q < p) mask[q] = 1;
    return tf.add(act, tf.mul(tf.tensor3d(mask, [1, p, 1]), tf.reshape(add, [1, 1, w])));
  };
  return new Map([[sv.hook, hook]]);
}

/** Logits [b, p, V] of the prompts with the vector added (caller-owned). */
export function steeredLogits(model: Transformer, prompts: readonly (readonly number[])[], sv: Pick<SteeringVector, 'hook' | 'vector'>, opts: SteerOptions): tf.Tensor {
  const hooks = steeringHooks(model, sv, opts, prompts[0]?.length ?? 0);
  return model.forward(prompts, { hooks });
}

export interface TokenProb {
  readonly id: number;
  readonly prob: number;
}

/** Next-token probabilities after `prompt`: the whole distribution and the top k. */
export function nextTokenDistribution(model: Transformer, prompt: readonly number[], steer?: { sv: Pick<SteeringVector, 'hook' | 'vector'>; opts: SteerOptions }, k = 10): { probs: Float32Array; top: TokenProb[] } {
  const hooks = steer ? steeringHooks(model, steer.sv, steer.opts, prompt.length) : undefined;
  const probs = tf.tidy(() => {
    const logits = model.forward([prompt], { hooks });
    const V = logits.shape[2]!;
    return tf.softmax(tf.reshape(tf.slice(logits, [0, prompt.length - 1, 0], [1, 1, V]), [V]));
  });
  const data = probs.dataSync() as Float32Array;
  probs.dispose();
  const top = Array.from(data, (prob, id) => ({ id, prob }))
    .sort((a, b) => b.prob - a.prob || a.id - b.id)
    .slice(0, k);
  return { probs: data, top };
}

/**
 * Greedy continuation of `n` tokens. Steering at all positions applies to generated tokens too;
 * steering at chosen positions applies to those prompt positions only.
 */
export function greedyContinuation(model: Transformer, prompt: readonly number[], n: number, steer?: { sv: Pick<SteeringVector, 'hook' | 'vector'>; opts: SteerOptions }): number[] {
  if (!Number.isInteger(n) || n < 0) throw new CircuitryError(`generate: expected a non-negative integer, got ${String(n)}`);
  if (prompt.length + n > model.cfg.nCtx) {
    throw new CircuitryError(`generate: ${prompt.length} prompt tokens + ${n} generated exceed the model's context of ${model.cfg.nCtx}; generate at most ${Math.max(0, model.cfg.nCtx - prompt.length)}`);
  }
  const hooks = steer ? steeringHooks(model, steer.sv, steer.opts, prompt.length) : undefined;
  const tokens = [...prompt];
  for (let i = 0; i < n; i++) {
    const next = tf.tidy(() => {
      const logits = model.forward([tokens], { hooks });
      const V = logits.shape[2]!;
      return tf.argMax(tf.reshape(tf.slice(logits, [0, tokens.length - 1, 0], [1, 1, V]), [V]));
    });
    tokens.push(next.dataSync()[0]);
    next.dispose();
  }
  return tokens.slice(prompt.length);
}

export interface SteeringComparison {
  readonly unsteered: { readonly top: TokenProb[]; readonly continuation: number[] };
  readonly steered: { readonly top: TokenProb[]; readonly continuation: number[] };
  /** KL(steered ‖ unsteered) of the next-token distributions, in nats. */
  readonly kl: number;
}

/** Next-token distributions and greedy continuations with and without steering. */
export function compareSteering(model: Transformer, prompt: readonly number[], sv: Pick<SteeringVector, 'hook' | 'vector'>, opts: SteerOptions & { readonly topK?: number; readonly generate?: number }): SteeringComparison {
  const k = opts.topK ?? 10;
  const n = opts.generate ?? 0;
  const steer = { sv, opts };
  const base = nextTokenDistribution(model, prompt, undefined, k);
  const steered = nextTokenDistribution(model, prompt, steer, k);
  let kl = 0;
  for (let i = 0; i < base.probs.length; i++) {
    const p = steered.probs[i];
    if (p > 0) kl += p * (Math.log(p) - Math.log(Math.max(base.probs[i], 1e-30)));
  }
  return {
    unsteered: { top: base.top, continuation: greedyContinuation(model, prompt, n) },
    steered: { top: steered.top, continuation: greedyContinuation(model, prompt, n, steer) },
    kl,
  };
}
