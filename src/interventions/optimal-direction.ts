import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { type BlockHook, type HookFn, type HookName, blockHook, parseHookName } from '../model/hooks.js';
import { hookShape } from '../model/transformer.js';
import { higherIsBetter, metricMean, recovery } from '../metrics/index.js';
import type { Patcher } from '../patching/patcher.js';
import type { OnProgress } from '../patching/progress.js';
import { seqLenOf } from './sites.js';
import { SeededRandom } from './rng.js';
import { CircuitryError } from '../errors.js';

/**
 * The optimal patch direction: for one site (a head's z, an MLP's output, a residual stream,
 * at every position or at one), the additive vector v with ‖v‖ ≤ r that moves the metric of the
 * corrupted run furthest toward better (up, or down for KL), found by projected gradient ascent
 * (Adam or plain steps, seeded initialisation, cosine-decayed step size, stopped when the
 * objective stops improving). v has the shape of the site's activation for one example —
 * [positions, width], one position or all of them (for a head: its z, [pos, d_head]) — and the
 * same v is added to every example.
 *
 * It is reported with its norm, the recovery it achieves and its cosine similarity to the mean
 * clean − corrupted difference at the site, next to what patching in the clean activation
 * achieves. r defaults to the size of that difference, each example's norm averaged over the
 * examples: the budget patching itself spends. Where the difference varies between examples,
 * one shared v can recover less than patching, which adapts to each example.
 */

export interface DirectionSite {
  readonly name: string;
  readonly hook: HookName;
  /** Axes after the batch, the last (the direction's) always null. */
  readonly select: readonly (number | null)[];
  readonly layer: number;
}

const SHORT: Record<string, BlockHook> = {
  resid_pre: 'hook_resid_pre',
  resid_mid: 'hook_resid_mid',
  resid_post: 'hook_resid_post',
  attn_out: 'hook_attn_out',
  mlp_out: 'hook_mlp_out',
  mlp_post: 'mlp.hook_post',
};

/**
 * Parses a site: `a1.h2` (head z, every position), `a1.h2@5`, `m0` / `m0@2` (MLP output),
 * `resid_pre:3@4` / `attn_out:1` (a hook by short name and layer), or a full hook name
 * `blocks.3.hook_resid_pre@4`.
 */
export function parseDirectionSite(text: string, cfg: ModelConfig, seqLen: number, where = '--site'): DirectionSite {
  const m = /^(.+?)(?:@(\d+))?$/.exec(text.trim());
  if (!m) throw new CircuitryError(`${where}: cannot read '${text}'`);
  const [, body, posText] = m;
  const pos = posText === undefined ? null : Number(posText);
  const { nLayers: L, nHeads: H } = cfg;
  const layerOk = (l: number) => {
    if (l >= L) throw new CircuitryError(`${where}: layer ${l} in '${text}' is out of range (the model has layers 0..${L - 1})`);
  };
  let hook: HookName;
  let select: (number | null)[];
  let head: RegExpExecArray | null;
  let mlp: RegExpExecArray | null;
  let short: RegExpExecArray | null;
  if ((head = /^a(\d+)\.h(\d+)$/.exec(body))) {
    const [l, h] = [Number(head[1]), Number(head[2])];
    layerOk(l);
    if (h >= H) throw new CircuitryError(`${where}: head ${h} in '${text}' is out of range (heads 0..${H - 1})`);
    hook = blockHook(l, 'attn.hook_z');
    select = [pos, h, null];
  } else if ((mlp = /^m(\d+)$/.exec(body))) {
    const l = Number(mlp[1]);
    layerOk(l);
    if (cfg.attnOnly) throw new CircuitryError(`${where}: '${text}' names an MLP, but the model is attention-only`);
    hook = blockHook(l, 'hook_mlp_out');
    select = [pos, null];
  } else if ((short = /^([a-z_]+):(\d+)$/.exec(body)) && SHORT[short[1]]) {
    const l = Number(short[2]);
    layerOk(l);
    hook = blockHook(l, SHORT[short[1]]);
    select = [pos, null];
  } else if (parseHookName(body)) {
    const parsed = parseHookName(body)!;
    if (parsed.layer >= 0) layerOk(parsed.layer);
    hook = body as HookName;
    const rank = hookShape(hook, cfg, 1, seqLen).length - 1;
    if (rank !== 2) throw new CircuitryError(`${where}: hook ${body} is not [batch, pos, width]; name a head as aL.hH instead`);
    select = [pos, null];
  } else {
    throw new CircuitryError(`${where}: unknown site '${text}' (expected aL.hH, mL, resid_pre:L, attn_out:L, mlp_out:L, mlp_post:L or a hook name, each optionally @position)`);
  }
  if (cfg.attnOnly && hook.includes('mlp')) throw new CircuitryError(`${where}: '${text}' names an MLP hook, but the model is attention-only`);
  if (pos !== null && pos >= seqLen) throw new CircuitryError(`${where}: position ${pos} in '${text}' is outside the prompts (positions 0..${seqLen - 1})`);
  const layer = parseHookName(hook)!.layer;
  return { name: text.trim(), hook, select, layer: Math.max(0, layer) };
}

export interface OptimalDirectionOptions {
  /** Norm bound r (default: the clean − corrupted difference's norm, averaged over examples: the size of the patch's change). */
  readonly radius?: number;
  readonly optimizer?: 'adam' | 'sgd';
  /** Initial step size as a fraction of r (default 0.05 for Adam, 0.5 for plain steps, whose steps are normalised by the gradient norm). */
  readonly learningRate?: number;
  /** At most this many steps (default 150). */
  readonly steps?: number;
  /** Stop when the objective improved less than tol × |clean − corrupted| over `patience` steps (default 1e-4 and 20). */
  readonly tolerance?: number;
  readonly patience?: number;
  readonly seed?: number;
  /** Where ascent starts: a seeded random direction of norm r (default), or the clean − corrupted difference. */
  readonly init?: 'random' | 'difference';
  readonly onProgress?: OnProgress;
}

export interface OptimalDirectionResult {
  readonly site: DirectionSite;
  readonly metric: Patcher['metric'];
  readonly clean: number;
  readonly corrupted: number;
  readonly radius: number;
  /** The best direction found ([positions, width] row-major), its norm, and the corrupted run's metric and recovery with it added. */
  readonly vector: Float32Array;
  readonly shape: readonly [number, number];
  readonly norm: number;
  readonly value: number;
  readonly recovery: number;
  /** Cosine similarity of v with the mean clean − corrupted difference. */
  readonly cosine: number;
  /**
   * The mean clean − corrupted difference added as the direction: its norm, metric and recovery;
   * and the mean over examples of each example's difference norm (what patching moves the
   * activation by; the default radius). The two norms agree when the difference is the same on
   * every example.
   */
  readonly difference: { readonly norm: number; readonly exampleNorm: number; readonly value: number; readonly recovery: number };
  /** Patching in the clean activation at the site (per example): metric and recovery. */
  readonly patch: { readonly value: number; readonly recovery: number };
  readonly steps: number;
  readonly converged: boolean;
  /** The objective (metric) at each step's iterate. */
  readonly history: readonly number[];
  readonly seed: number;
  readonly optimizer: 'adam' | 'sgd';
  readonly forwardPasses: number;
  readonly backwardPasses: number;
}

/** Finds the optimal direction at `site` on the patcher's dataset (its corrupted prompts). */
export function optimalDirection(patcher: Patcher, siteSpec: DirectionSite | string, opts: OptimalDirectionOptions = {}): OptimalDirectionResult {
  const model = patcher.engine.model;
  const cfg = model.cfg;
  const P = seqLenOf(patcher);
  const site = typeof siteSpec === 'string' ? parseDirectionSite(siteSpec, cfg, P, 'site') : siteSpec;
  const optimizer = opts.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new CircuitryError(`optimizer: expected adam or sgd, got '${String(optimizer)}'`);
  const maxSteps = opts.steps ?? 150;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new CircuitryError(`steps: expected a positive integer, got ${String(opts.steps)}`);
  const lrFrac = opts.learningRate ?? (optimizer === 'adam' ? 0.05 : 0.5);
  if (!(lrFrac > 0 && Number.isFinite(lrFrac))) throw new CircuitryError(`learning rate: expected a positive number, got ${String(opts.learningRate)}`);
  const tol = opts.tolerance ?? 1e-4;
  const patience = opts.patience ?? 20;
  if (!(tol >= 0) || !Number.isInteger(patience) || patience < 1) throw new CircuitryError('tolerance must be ≥ 0 and patience a positive integer');
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new CircuitryError(`seed: expected an integer, got ${String(seed)}`);
  const init = opts.init ?? 'random';
  if (init !== 'random' && init !== 'difference') throw new CircuitryError(`init: expected random or difference, got '${String(init)}'`);

  const rest = hookShape(site.hook, cfg, 1, P).slice(1);
  if (site.select.length !== rest.length || site.select[rest.length - 1] !== null || (rest.length === 3 && site.select[1] === null) || rest.length < 2 || rest.length > 3) {
    throw new CircuitryError(`site '${site.name}': expected a [pos, width] hook or one head of a [pos, head, width] hook, with the width axis free`);
  }
  const width = rest[rest.length - 1];
  const pos = site.select[0];
  const nPos = pos === null ? P : 1;
  const size = nPos * width; // v is [nPos, width]
  // v -> [1, ...rest]: the selected positions (and head), zero elsewhere
  const posMask = tf.tensor(Float32Array.from({ length: P }, (_, i) => (pos === null || i === pos ? 1 : 0)), rest.length === 3 ? [1, P, 1, 1] : [1, P, 1]);
  const headMask = rest.length === 3 ? tf.tensor(Float32Array.from({ length: rest[1] }, (_, h) => (h === site.select[1] ? 1 : 0)), [1, 1, rest[1], 1]) : undefined;
  const vShape = rest.length === 3 ? [1, nPos, 1, width] : [1, nPos, width];
  const embed = (v: tf.Tensor) => {
    const placed = tf.mul(posMask, tf.reshape(v, vShape));
    return headMask ? tf.mul(placed, headMask) : placed;
  };
  /** The selected entries of an activation [B, ...rest], as [B, nPos, width]. */
  const pick = (act: tf.Tensor) => {
    const B = act.shape[0];
    const h = rest.length === 3 ? tf.reshape(tf.slice(act, [0, 0, site.select[1]!, 0], [B, P, 1, width]), [B, P, width]) : act;
    return pos === null ? h : tf.slice(h, [0, pos, 0], [B, 1, width]);
  };
  const selectMask = tf.tidy(() => embed(tf.ones([size])));
  const sign = higherIsBetter(patcher.metric) ? 1 : -1;
  let forwardPasses = 0;
  let backwardPasses = 0;
  const cleanActs: tf.Tensor[] = [];
  try {
    // clean activations at the hook per chunk, and the mean clean − corrupted difference at the site
    const diffSum = new Float64Array(size);
    let exampleNormSum = 0;
    patcher.forEachChunk((chunk) => {
      const c = model.runWithCache(chunk.clean.tokens, [site.hook]);
      const k = model.runWithCache(chunk.corrupted.tokens, [site.hook]);
      forwardPasses += 2;
      c.logits.dispose();
      k.logits.dispose();
      const cleanAct = c.cache.get(site.hook)!;
      const corrAct = k.cache.get(site.hook)!;
      cleanActs.push(cleanAct);
      const [s, norms] = tf.tidy(() => {
        const d = tf.reshape(pick(tf.sub(cleanAct, corrAct)), [-1, size]); // [B, size]
        return [tf.sum(d, 0), tf.sqrt(tf.sum(tf.square(d), 1))];
      });
      const data = s.dataSync();
      for (let i = 0; i < size; i++) diffSum[i] += data[i];
      for (const x of norms.dataSync()) exampleNormSum += x;
      tf.dispose([s, norms]);
      corrAct.dispose();
    });
    const diff = Float32Array.from(diffSum, (x) => x / patcher.nExamples);
    const diffNorm = norm(diff);
    const exampleNorm = exampleNormSum / patcher.nExamples;
    const radius = opts.radius ?? exampleNorm;
    if (!(Number.isFinite(radius) && radius > 0)) {
      throw new CircuitryError(
        opts.radius === undefined
          ? `site '${site.name}': the clean and corrupted activations do not differ there, so there is no default norm bound; give a radius`
          : `radius: expected a positive number, got ${String(opts.radius)}`,
      );
    }

    /** The metric of the corrupted run with `v` added at the site (and its gradient when asked). */
    const evaluate = (v: Float32Array, withGrad: boolean): { value: number; grad?: Float32Array } => {
      let value = 0;
      const grad = withGrad ? new Float64Array(size) : undefined;
      patcher.forEachChunk((chunk) => {
        const vT = tf.tensor1d(v);
        const f = (vv: tf.Tensor): tf.Scalar => {
          const add: HookFn = (act) => tf.add(act, embed(vv));
          const logits = model.forward(chunk.corrupted.tokens, { hooks: { [site.hook]: add }, startAtLayer: site.layer, residual: site.layer > 0 ? chunk.corrupted.residPre[site.layer] : undefined });
          return metricMean(patcher.metric, logits, chunk.targets);
        };
        if (grad) {
          const { value: val, grad: g } = tf.valueAndGrad(f)(vT);
          value += val.dataSync()[0] * chunk.weight;
          const gd = g.dataSync();
          for (let i = 0; i < size; i++) grad[i] += gd[i] * chunk.weight;
          tf.dispose([val, g]);
          backwardPasses++;
        } else {
          const val = tf.tidy(() => f(vT));
          value += val.dataSync()[0] * chunk.weight;
          val.dispose();
        }
        vT.dispose();
        forwardPasses++;
      });
      return { value, grad: grad ? Float32Array.from(grad) : undefined };
    };

    // patching in the clean activation at the site
    let patchValue = 0;
    let ci = 0;
    patcher.forEachChunk((chunk) => {
      const cleanAct = cleanActs[ci++];
      const replace: HookFn = (act) => tf.add(act, tf.mul(selectMask, tf.sub(cleanAct, act)));
      const val = tf.tidy(() =>
        metricMean(patcher.metric, model.forward(chunk.corrupted.tokens, { hooks: { [site.hook]: replace }, startAtLayer: site.layer, residual: site.layer > 0 ? chunk.corrupted.residPre[site.layer] : undefined }), chunk.targets),
      );
      patchValue += val.dataSync()[0] * chunk.weight;
      val.dispose();
      forwardPasses++;
    });
    const diffValue = diffNorm > 0 ? evaluate(diff, false).value : patcher.corruptedMetric;

    // projected gradient ascent on sign · metric
    const rng = new SeededRandom(seed);
    let v: Float32Array;
    if (init === 'difference' && diffNorm > 0) v = Float32Array.from(diff);
    else v = rng.normals(size);
    project(v, radius, true);
    const m1 = new Float64Array(size);
    const m2 = new Float64Array(size);
    const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
    const history: number[] = [];
    let best = { v: Float32Array.from(v), value: -Infinity * sign };
    const scale = Math.abs(patcher.cleanMetric - patcher.corruptedMetric) || 1;
    let converged = false;
    let steps = 0;
    opts.onProgress?.(0, maxSteps);
    for (let t = 1; t <= maxSteps; t++) {
      const { value, grad } = evaluate(v, true);
      history.push(value);
      if (sign * value > sign * best.value) best = { v: Float32Array.from(v), value };
      steps = t;
      opts.onProgress?.(t, maxSteps);
      if (t > patience && sign * (best.value - history[t - 1 - patience]) < tol * scale && sign * (value - history[t - 1 - patience]) < tol * scale) {
        converged = true;
        break;
      }
      const lr = lrFrac * radius * 0.5 * (1 + Math.cos((Math.PI * (t - 1)) / maxSteps));
      // ascent direction; on the sphere, drop its outward radial part (the projection would undo it,
      // and Adam's moments would keep pushing against the bound instead of along it)
      const g = Float64Array.from(grad!, (x) => sign * x);
      const vn = norm(v);
      if (vn >= radius * (1 - 1e-6)) {
        const radial = dot(g, v) / vn;
        if (radial > 0) for (let i = 0; i < size; i++) g[i] -= (radial * v[i]) / vn;
      }
      if (optimizer === 'adam') {
        for (let i = 0; i < size; i++) {
          const gi = g[i];
          m1[i] = beta1 * m1[i] + (1 - beta1) * gi;
          m2[i] = beta2 * m2[i] + (1 - beta2) * gi * gi;
          const mh = m1[i] / (1 - beta1 ** t);
          const vh = m2[i] / (1 - beta2 ** t);
          v[i] += (lr * mh) / (Math.sqrt(vh) + eps);
        }
      } else {
        const gn = norm(g) || 1;
        for (let i = 0; i < size; i++) v[i] += (lr * g[i]) / gn;
      }
      project(v, radius, false);
    }
    if (!converged) {
      const last = evaluate(v, false).value;
      history.push(last);
      if (sign * last > sign * best.value) best = { v: Float32Array.from(v), value: last };
    }
    const { cleanMetric: clean, corruptedMetric: corrupted } = patcher;
    return {
      site,
      metric: patcher.metric,
      clean,
      corrupted,
      radius,
      vector: best.v,
      shape: [nPos, width],
      norm: norm(best.v),
      value: best.value,
      recovery: recovery(best.value, clean, corrupted),
      cosine: diffNorm > 0 ? dot(best.v, diff) / (norm(best.v) * diffNorm || 1) : NaN,
      difference: { norm: diffNorm, exampleNorm, value: diffValue, recovery: recovery(diffValue, clean, corrupted) },
      patch: { value: patchValue, recovery: recovery(patchValue, clean, corrupted) },
      steps,
      converged,
      history,
      seed,
      optimizer,
      forwardPasses,
      backwardPasses,
    };
  } finally {
    tf.dispose([posMask, selectMask, ...(headMask ? [headMask] : []), ...cleanActs]);
  }
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Scales v onto the ball of radius r (onto its sphere when `exact`). */
function project(v: Float32Array, r: number, exact: boolean): void {
  const n = norm(v);
  if (n === 0) return;
  if (exact || n > r) {
    const f = r / n;
    for (let i = 0; i < v.length; i++) v[i] *= f;
  }
}
