import { CircuitryError } from '../../errors.js';
import type { ZooTensor } from '../types.js';

/**
 * Construction kit for planted-circuit models: GPT-2-layout weights written by hand.
 *
 * The residual stream is split into named features, each a unit direction of an orthonormal
 * basis of the zero-mean subspace of R^d (a seeded random rotation, so nothing is axis-aligned).
 * Zero mean means LayerNorm's centering is the identity on everything the model writes, and a
 * large constant feature (CONST, carried by every position embedding) dominates the norm, so
 * every LayerNorm acts as the same fixed scaling x -> gain·x to within a fraction of a percent
 * (all its weights are 1 and its biases 0). Weights are therefore specified in residual units:
 * "read feature f with weight w" produces w·(value of f in the residual stream).
 *
 * Features marked `safe` (CONST, positions, junk) hold the same values in a clean and a
 * corrupted run. Decoy heads and MLP units read only safe features and write only junk, so
 * they are present and active but every edge out of them carries identical values in both runs.
 */

export interface PlantedShape {
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dModel: number;
  readonly nCtx: number;
  readonly dMlp: number;
  readonly vocab: readonly string[];
  /** Magnitude of the constant feature carried by every position embedding. */
  readonly constNorm: number;
  /**
   * Sum of squares of everything else a LayerNorm typically sees (features have magnitude ~1);
   * it only refines the gain estimate sqrt(d) / ‖x‖.
   */
  readonly typicalExtra: number;
}

export type Qkv = 'q' | 'k' | 'v';

/** The shape every planted model shares: 2 layers, 4 heads of 16, d_model 64, 16 positions. */
export const PLANTED_SHAPE = {
  nLayers: 2,
  nHeads: 4,
  dModel: 64,
  nCtx: 16,
  dMlp: 256,
  constNorm: 30,
  typicalExtra: 4,
} as const satisfies Omit<PlantedShape, 'vocab'>;

/** A small deterministic PRNG (32-bit counter through an integer hash): same seed, same stream. */
export class PlantedRng {
  private counter: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new CircuitryError(`seed must be an integer, got ${String(seed)}`);
    this.counter = hash32((seed >>> 0) ^ hash32(Math.floor(seed / 0x1_0000_0000) + 0x2545f491));
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.counter = (this.counter + 0x6d2b79f5) >>> 0;
    return hash32(this.counter) / 0x1_0000_0000;
  }

  /** Uniform integer in 0..n-1. */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** k distinct elements of `pool`, in random order. */
  sample<T>(pool: readonly T[], k: number): T[] {
    if (k > pool.length) throw new RangeError(`cannot draw ${k} distinct items from ${pool.length}`);
    const a = [...pool];
    for (let i = 0; i < k; i++) {
      const j = i + this.int(a.length - i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, k);
  }

  pick<T>(pool: readonly T[]): T {
    return pool[this.int(pool.length)];
  }
}

function hash32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x2c1b3c6d);
  z = Math.imul(z ^ (z >>> 12), 0x297a2d39);
  return (z ^ (z >>> 15)) >>> 0;
}

/** An orthonormal basis (d-1 vectors) of {x in R^d : Σx = 0}: random Gaussians, centred, Gram-Schmidt. */
function zeroMeanBasis(d: number, rng: PlantedRng): Float64Array[] {
  const basis: Float64Array[] = [];
  while (basis.length < d - 1) {
    const v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = rng.normal();
    for (let pass = 0; pass < 2; pass++) {
      const mean = v.reduce((s, x) => s + x, 0) / d;
      for (let i = 0; i < d; i++) v[i] -= mean;
      for (const u of basis) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += v[i] * u[i];
        for (let i = 0; i < d; i++) v[i] -= dot * u[i];
      }
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    if (norm < 1e-6) continue;
    for (let i = 0; i < d; i++) v[i] /= norm;
    basis.push(v);
  }
  return basis;
}

interface LayerArrays {
  cAttnW: Float64Array; // [d, 3d]
  cAttnB: Float64Array; // [3d]
  cProjW: Float64Array; // [d, d]
  cProjB: Float64Array; // [d]
  fcW: Float64Array; // [d, dm]
  fcB: Float64Array; // [dm]
  projW: Float64Array; // [dm, d]
  projB: Float64Array; // [d]
}

export class PlantedBuilder {
  readonly shape: PlantedShape;
  readonly d: number;
  readonly dHead: number;
  readonly vocabSize: number;
  /** LayerNorm's effective gain sqrt(d)/‖x‖ for the typical residual norm. */
  readonly gain: number;
  /** The constant feature (magnitude constNorm at every position). */
  readonly CONST: number;
  /** One-hot position features POS[p], magnitude 1. */
  readonly POS: readonly number[];
  private readonly basis: Float64Array[];
  private readonly names: string[] = [];
  private readonly safe = new Set<number>();
  private readonly junk: number[] = [];
  private readonly wte: Float64Array;
  private readonly wpe: Float64Array;
  private readonly lmHead: Float64Array;
  private readonly layers: LayerArrays[];
  private readonly usedUnits: Set<number>[];

  constructor(shape: PlantedShape) {
    const { nLayers, nHeads, dModel: d, nCtx, dMlp, vocab } = shape;
    if (d % nHeads !== 0) throw new CircuitryError(`planted model: d_model ${d} is not divisible by ${nHeads} heads`);
    this.shape = shape;
    this.d = d;
    this.dHead = d / nHeads;
    this.vocabSize = vocab.length;
    this.gain = Math.sqrt(d) / Math.sqrt(shape.constNorm ** 2 + shape.typicalExtra);
    this.basis = zeroMeanBasis(d, new PlantedRng(0x5eed));
    this.wte = new Float64Array(vocab.length * d);
    this.wpe = new Float64Array(nCtx * d);
    this.lmHead = new Float64Array(vocab.length * d);
    this.layers = Array.from({ length: nLayers }, () => ({
      cAttnW: new Float64Array(d * 3 * d),
      cAttnB: new Float64Array(3 * d),
      cProjW: new Float64Array(d * d),
      cProjB: new Float64Array(d),
      fcW: new Float64Array(d * dMlp),
      fcB: new Float64Array(dMlp),
      projW: new Float64Array(dMlp * d),
      projB: new Float64Array(d),
    }));
    this.usedUnits = Array.from({ length: nLayers }, () => new Set<number>());
    this.CONST = this.features('const', 1, true)[0];
    this.POS = this.features('pos', nCtx, true);
    for (let p = 0; p < nCtx; p++) {
      this.pos(p, this.CONST, shape.constNorm);
      this.pos(p, this.POS[p], 1);
    }
  }

  /** Allocates `count` orthogonal features; `safe` ones must not differ between clean and corrupted runs. */
  features(name: string, count: number, safe = false): number[] {
    if (this.names.length + count > this.basis.length) {
      throw new CircuitryError(`planted model: out of residual directions allocating '${name}' (${this.names.length} + ${count} > ${this.basis.length})`);
    }
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const f = this.names.length;
      this.names.push(count === 1 ? name : `${name}${i}`);
      if (safe) this.safe.add(f);
      out.push(f);
    }
    return out;
  }

  /** Allocates up to `max` junk features (written by decoys only) from what is left. */
  allocJunk(max: number): number[] {
    const n = Math.min(max, this.basis.length - this.names.length);
    if (n < 1) throw new CircuitryError('planted model: no residual direction left for junk');
    const js = this.features('junk', n, true);
    this.junk.push(...js);
    return js;
  }

  featureName(f: number): string {
    return this.names[f];
  }

  // ---- embeddings and unembedding ----

  /** wte[token] += value · u_f */
  embed(token: number, f: number, value: number): void {
    this.axpy(this.wte, token * this.d, f, value);
  }

  /** wpe[p] += value · u_f */
  pos(p: number, f: number, value: number): void {
    this.axpy(this.wpe, p * this.d, f, value);
  }

  /** logit[token] += w · (value of f after ln_f, in residual units). */
  unembed(token: number, f: number, w: number): void {
    this.axpy(this.lmHead, token * this.d, f, w / this.gain);
  }

  // ---- attention ----

  /** Head (l, h)'s q/k/v dimension j reads w · (feature f). */
  read(l: number, h: number, which: Qkv, j: number, f: number, w: number): void {
    const { d } = this;
    const col = this.qkvCol(h, which, j);
    const u = this.basis[f];
    const W = this.layers[l].cAttnW;
    const s = w / this.gain;
    for (let i = 0; i < d; i++) W[i * 3 * d + col] += s * u[i];
  }

  /** Head (l, h)'s q/k/v dimension j gets a constant b. */
  bias(l: number, h: number, which: Qkv, j: number, b: number): void {
    this.layers[l].cAttnB[this.qkvCol(h, which, j)] += b;
  }

  /**
   * An attention score of `score` (after the 1/sqrt(d_head) scaling) wherever the query has
   * feature `qf` and the key has feature `kf` (both at magnitude 1), carried by head dim j.
   */
  match(l: number, h: number, j: number, qf: number, kf: number, score: number): void {
    this.read(l, h, 'q', j, qf, score * Math.sqrt(this.dHead));
    this.read(l, h, 'k', j, kf, 1);
  }

  /** A score of `score` for every query on keys with feature `kf` (a constant query). */
  keyBonus(l: number, h: number, j: number, kf: number, score: number): void {
    this.bias(l, h, 'q', j, score * Math.sqrt(this.dHead));
    this.read(l, h, 'k', j, kf, 1);
  }

  /** Head (l, h) writes w · u_f per unit of its z dimension j. */
  write(l: number, h: number, j: number, f: number, w: number): void {
    const { d } = this;
    const row = (h * this.dHead + j) * d;
    this.axpy(this.layers[l].cProjW, row, f, w);
  }

  // ---- MLP ----

  /** MLP l hidden unit `unit` reads w · (feature f). */
  mlpRead(l: number, unit: number, f: number, w: number): void {
    const { d } = this;
    const dm = this.shape.dMlp;
    const u = this.basis[f];
    const W = this.layers[l].fcW;
    const s = w / this.gain;
    for (let i = 0; i < d; i++) W[i * dm + unit] += s * u[i];
    this.usedUnits[l].add(unit);
  }

  mlpBias(l: number, unit: number, b: number): void {
    this.layers[l].fcB[unit] += b;
    this.usedUnits[l].add(unit);
  }

  /** MLP l hidden unit `unit` writes w · u_f per unit of activation. */
  mlpWrite(l: number, unit: number, f: number, w: number): void {
    this.axpy(this.layers[l].projW, unit * this.d, f, w);
    this.usedUnits[l].add(unit);
  }

  /** MLP l's output bias += w · u_f. */
  mlpOutBias(l: number, f: number, w: number): void {
    this.axpy(this.layers[l].projB, 0, f, w);
  }

  /** The first MLP unit of layer l not used yet. */
  freeUnit(l: number): number {
    for (let u = 0; u < this.shape.dMlp; u++) if (!this.usedUnits[l].has(u)) return u;
    throw new CircuitryError(`planted model: MLP ${l} has no free unit`);
  }

  // ---- decoys ----

  /**
   * A decoy head: a positional attention pattern (to BOS, to itself, to the previous position,
   * or a soft recency bias), values read from safe features, output written to junk only.
   */
  decoyHead(l: number, h: number, pattern: 'bos' | 'self' | 'prev' | 'recent', rng: PlantedRng): void {
    const { nCtx } = this.shape;
    const dh = this.dHead;
    if (pattern === 'bos') this.keyBonus(l, h, 0, this.POS[0], 6);
    else if (pattern === 'recent') {
      // a soft preference for later keys: score 0.5·position
      this.bias(l, h, 'q', 0, Math.sqrt(dh));
      for (let p = 0; p < nCtx; p++) this.read(l, h, 'k', 0, this.POS[p], 0.5 * p);
    } else {
      const off = pattern === 'self' ? 0 : 1;
      for (let p = off; p < nCtx; p++) this.match(l, h, (p - off) % dh, this.POS[p], this.POS[p - off], 6);
    }
    const reads = this.safeReadable();
    for (let j = 0; j < 4; j++) {
      for (const f of reads) this.read(l, h, 'v', dh - 1 - j, f, (f === this.CONST ? 0.01 : 0.3) * rng.normal());
      for (const f of this.junk) this.write(l, h, dh - 1 - j, f, 0.15 * rng.normal());
    }
  }

  /** `units` decoy MLP units of layer l reading safe features and writing junk. */
  decoyUnits(l: number, units: number, rng: PlantedRng): void {
    const reads = this.safeReadable();
    for (let i = 0; i < units; i++) {
      const u = this.freeUnit(l);
      for (const f of reads) this.mlpRead(l, u, f, (f === this.CONST ? 0.02 : 0.5) * rng.normal());
      this.mlpBias(l, u, 0.3 * rng.normal());
      for (const f of this.junk) this.mlpWrite(l, u, f, 0.1 * rng.normal());
    }
  }

  private safeReadable(): number[] {
    return [...this.safe];
  }

  // ---- output ----

  /** The HF config object and HF-named float32 tensors. */
  build(): { config: Record<string, unknown>; tensors: Map<string, ZooTensor> } {
    const { nLayers, nHeads, nCtx, dMlp, vocab } = this.shape;
    const { d } = this;
    const V = vocab.length;
    const tensors = new Map<string, ZooTensor>();
    const put = (name: string, shape: number[], data: Float64Array) => tensors.set(name, { shape, data: Float32Array.from(data) });
    const ones = new Float64Array(d).fill(1);
    const zeros = new Float64Array(d);
    put('wte.weight', [V, d], this.wte);
    put('wpe.weight', [nCtx, d], this.wpe);
    this.layers.forEach((L, l) => {
      const p = `h.${l}`;
      put(`${p}.ln_1.weight`, [d], ones);
      put(`${p}.ln_1.bias`, [d], zeros);
      put(`${p}.attn.c_attn.weight`, [d, 3 * d], L.cAttnW);
      put(`${p}.attn.c_attn.bias`, [3 * d], L.cAttnB);
      put(`${p}.attn.c_proj.weight`, [d, d], L.cProjW);
      put(`${p}.attn.c_proj.bias`, [d], L.cProjB);
      put(`${p}.ln_2.weight`, [d], ones);
      put(`${p}.ln_2.bias`, [d], zeros);
      put(`${p}.mlp.c_fc.weight`, [d, dMlp], L.fcW);
      put(`${p}.mlp.c_fc.bias`, [dMlp], L.fcB);
      put(`${p}.mlp.c_proj.weight`, [dMlp, d], L.projW);
      put(`${p}.mlp.c_proj.bias`, [d], L.projB);
    });
    put('ln_f.weight', [d], ones);
    put('ln_f.bias', [d], zeros);
    put('lm_head.weight', [V, d], this.lmHead);
    const config = {
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_layer: nLayers,
      n_head: nHeads,
      n_embd: d,
      n_inner: dMlp,
      vocab_size: V,
      n_positions: nCtx,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      tie_word_embeddings: false,
      scale_attn_weights: true,
    };
    return { config, tensors };
  }

  private qkvCol(h: number, which: Qkv, j: number): number {
    if (j < 0 || j >= this.dHead) throw new RangeError(`head dimension ${j} outside 0..${this.dHead - 1}`);
    const block = which === 'q' ? 0 : which === 'k' ? 1 : 2;
    return block * this.d + h * this.dHead + j;
  }

  private axpy(target: Float64Array, offset: number, f: number, a: number): void {
    const u = this.basis[f];
    if (!u) throw new RangeError(`unknown feature ${f}`);
    for (let i = 0; i < this.d; i++) target[offset + i] += a * u[i];
  }
}

/** Validates the dataset options every planted model takes. */
export function checkDatasetOptions(model: string, task: string, tasks: readonly string[], opts: { n: number; seed: number }): void {
  if (!tasks.includes(task)) {
    throw new CircuitryError(`zoo model '${model}' has no task '${task}' (its tasks: ${tasks.join(', ')})`);
  }
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new CircuitryError(`${model} dataset: n must be a positive integer, got ${String(opts.n)}`);
  if (!Number.isSafeInteger(opts.seed)) throw new CircuitryError(`${model} dataset: seed must be an integer, got ${String(opts.seed)}`);
}
