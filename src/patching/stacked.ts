import * as tf from '@tensorflow/tfjs';
import type { HookFn, HookName } from '../model/hooks.js';
import { parseHookName } from '../model/hooks.js';
import { hookShape, type Transformer } from '../model/transformer.js';

/**
 * Activation patching of many sites in one pass: K stacked copies of a run's prompts, copy k
 * patching site k. Sweeps and the interventions both run on this.
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

/**
 * act + delta for a destination's input, act [n, p | 1, d] and delta [n, p, d]: at the last
 * position only where the activation is a trimmed last block's (lastQueryOnly), whose other
 * positions reach nothing the logits read.
 */
export function addDelta(act: tf.Tensor, delta: tf.Tensor): tf.Tensor {
  const [n, p, d] = delta.shape;
  return tf.add(act, act.shape[1] === p ? delta : tf.slice(delta, [0, p! - 1, 0], [n!, 1, d!]));
}

/** The lowest layer a site touches (-1 for embedding hooks). */
export function siteLayer(site: Site): number {
  return Math.min(...site.parts.map((p) => parseHookName(p.hook)?.layer ?? -1));
}

/**
 * One pass of K stacked copies of the run's prompts, copy k patching site k. Values to patch
 * in are [B, …] (the other run), [1, …] (a mean) or absent (zero ablation).
 */
export function stackedSiteForward(
  model: Transformer,
  run: { tokens: tf.Tensor2D; residPre: readonly tf.Tensor[] },
  group: readonly Site[],
  values: ReadonlyMap<HookName, tf.Tensor> | undefined,
  B: number,
  p: number,
): tf.Tensor {
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
    residual = stackCopies(r, K);
  }
  return model.forward(tokens, { hooks, startAtLayer: start, residual });
}

/** K copies of a float tensor stacked on its first axis, [n, …] → [K·n, …], by broadcasting (Tile is slow on wasm). */
export function stackCopies(t: tf.Tensor, K: number): tf.Tensor {
  if (K === 1) return t;
  const ones = t.shape.map(() => 1);
  return tf.reshape(tf.add(tf.expandDims(t, 0), tf.zeros([K, ...ones])), [K * t.shape[0], ...t.shape.slice(1)]);
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

