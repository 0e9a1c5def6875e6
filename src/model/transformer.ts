import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.js';
import type { LayerWeights, ModelWeights, NormWeights } from './arch/types.js';
import type { HostTensor } from './safetensors.js';
import { type HookFn, type HookName, type Hooks, blockHook, parseHookName } from './hooks.js';
import { RowsWeight, Weight, bmm, geluErf, geluNew, layerNorm, linear, matmul, rmsNorm, sharedInputProduct, silu, standardize } from './ops.js';
import { CircuitryError } from '../errors.js';
import { rowMoments } from '../backend/simd.js';

/** Token ids: a [batch, pos] int32 tensor or nested arrays. */
export type TokensInput = tf.Tensor2D | readonly (readonly number[])[];

export interface ForwardOptions {
  readonly hooks?: Hooks;
  /** Compute each head's q/k/v input separately (enables blocks.{l}.hook_{q,k,v}_input). */
  readonly splitQkvInput?: boolean;
  /** Compute per-head outputs (enables blocks.{l}.attn.hook_result). */
  readonly useAttnResult?: boolean;
  /** Start at this layer; `residual` is then blocks.{start}.hook_resid_pre and tokens are unused. */
  readonly startAtLayer?: number;
  readonly residual?: tf.Tensor;
  /** Stop before this layer and return blocks.{stop}.hook_resid_pre instead of logits. */
  readonly stopAtLayer?: number;
  /**
   * Unembed the last position only: logits [b, 1, V]. Every task metric reads the last position,
   * and on a GPT-2-sized vocabulary the unembedding is ~40% of the forward pass.
   */
  readonly lastPositionOnly?: boolean;
  /**
   * With lastPositionOnly: the last block also works at the last position only, except for its
   * keys and values, which every position supplies (its queries, attention output and MLP at the
   * other positions reach nothing the last logits read). On a 4-layer model that is ~20% of the
   * forward and backward passes. The last block's hooks from attn.hook_q on (except hook_k,
   * hook_v and the split hook_{k,v}_input) then see one position: [b, 1, …] (see hookShape).
   */
  readonly lastQueryOnly?: boolean;
  /**
   * Unembed only these tokens (Transformer.vocabularySubset): logits [b, p, n] in the subset's
   * order. A metric that reads a few tokens' logits (logit difference) then skips the rest of the
   * vocabulary's product, most of a late-starting patched pass on GPT-2's 50,257 tokens.
   */
  readonly vocabulary?: VocabularySubset;
  /**
   * Per-head residual inputs for layer l's attention instead of the shared stream, or nothing to
   * keep the shared stream. The block applies LN1 and each head's projection; hook_{q,k,v}_input
   * are not run. The patching engine's dense pass builds these inputs in this layout directly.
   */
  readonly headInputs?: (layer: number, resid: tf.Tensor) => HeadInputs | undefined;
}

/**
 * Every head's own residual input: `rows` [b·p, R, d] holds row h·G + g for head h, with G = 3
 * (each head's own q, k and v input) or G = 1 (one input per head for all three). Rows from H·G
 * on are the caller's own and are ignored (the patching engine's rider sums travel there, which
 * saves slicing them off a tensor this size).
 */
export interface HeadInputs {
  readonly rows: tf.Tensor;
  readonly perHead: 1 | 3;
  /** `rows` is [R, b·p, d] instead: one contiguous block per row (the split hooks' layout). */
  readonly headMajor?: boolean;
}

interface NormParams {
  w: tf.Tensor;
  b?: tf.Tensor; // LayerNorm only
}

interface Layer {
  ln1?: NormParams;
  wQKV: Weight; // [d, 3·H·dh]    (fused, when q/k/v inputs are shared; k/v ungrouped)
  bQKV?: tf.Tensor; // [3·H·dh]
  /**
   * The per-head q/k/v weights, for split inputs (ForwardOptions.headInputs) and the sparse
   * patch's head projections: each [3H, d, dh], head h's W_q,h, W_k,h, W_v,h at rows 3h, 3h + 1,
   * 3h + 2 (the one per-head layout: a head's three inputs are three batch entries, one input
   * for all three is a broadcast product); bias [H, 3, 1, dh]; colSums [3H, 1, dh], each
   * matrix's column sums, which centre products of uncentred inputs under a folded LayerNorm.
   */
  heads: { readonly each: Weight; readonly bias: tf.Tensor; readonly colSums: tf.Tensor };
  bQ: tf.Tensor; // [H, 1, dh]
  bK: tf.Tensor;
  bV: tf.Tensor;
  /**
   * LN1's weight (and LayerNorm's bias) are folded into heads.each and bQ/bK/bV (diag(w)·W and
   * b_LN·W + b), so the per-head path normalizes without the affine part and scales by the
   * norm's 1/σ (LayerNorm, after centring) or 1/rms (RMSNorm) after the projection, on [.., dh]
   * rather than [.., d]. Frozen models with a norm only.
   */
  headLnFolded: boolean;
  wO: Weight; // [H*dh, d]
  wOHeads: Weight; // [H, dh, d]
  bO?: tf.Tensor; // [d]
  postAttn?: NormParams;
  ln2?: NormParams;
  wIn?: Weight; // [d, dm], or [d, 2·dm] = [W_gate | W_in] for a gated MLP
  bIn?: tf.Tensor;
  wOut?: Weight; // [dm, d]
  bOut?: tf.Tensor;
  postMlp?: NormParams;
  /**
   * A trainable grouped-query model keeps its k/v weights grouped ([d, Hkv·dh] variables, so
   * the heads of a group stay tied) and ungroups them in each forward; wQKV is then unused.
   */
  grouped?: { q: tf.Variable; k: tf.Variable; v: tf.Variable; bQ?: tf.Variable; bK?: tf.Variable; bV?: tf.Variable };
}

const host = (t: HostTensor) => tf.tensor(t.data, [...t.shape], 'float32');

/**
 * Grouped-query k/v columns [rows, Hkv·dh] (or a vector when rows = 1) → [rows, H·dh], kv head
 * g repeated for its `group` query heads (TransformerLens ungroup_grouped_query_attention).
 */
function ungroupColumns(t: tf.Tensor, rows: number, Hkv: number, group: number, dh: number): tf.Tensor {
  if (group === 1) return t;
  const D = Hkv * group * dh;
  return tf.reshape(tf.add(tf.reshape(t, [rows, Hkv, 1, dh]), tf.zeros([1, 1, group, 1])), rows === 1 ? [D] : [rows, D]);
}

/** x + b, or x when there is no bias. */
const addBias = (x: tf.Tensor, b: tf.Tensor | undefined) => (b ? tf.add(x, b) : x);

/** cap·tanh(x/cap), with tanh(u) = 2σ(2u) − 1 (wasm's Sigmoid is much faster than its Tanh). */
function softCap(x: tf.Tensor, cap: number): tf.Tensor {
  return tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2 / cap)), 2 * cap), cap);
}

/**
 * A transformer with TransformerLens hook points, built from the family-neutral description
 * (src/model/arch): it reads only ModelConfig fields, never a family name. It knows nothing of
 * graphs or algorithms: callers read and replace activations through hooks. All methods are
 * synchronous and tidy their intermediates; returned tensors belong to the caller.
 */
export class Transformer {
  readonly cfg: ModelConfig;
  readonly trainable: boolean;
  private readonly layers: Layer[];
  private readonly wte: tf.Tensor; // [V, d]
  private readonly wpe?: tf.Tensor; // [nCtx, d] (learned positions)
  /** W_U: frozen, as rows [V, d] (tied: wte itself); trainable and untied, a [d, V] variable; trainable and tied, none (wte is read live). */
  private readonly wU: RowsWeight | Weight | undefined;
  private readonly lnF?: NormParams;
  /**
   * Rotary tables [p, 1, dh] by prompt length, over a head's whole width: cos = [cos, cos, 1…] and
   * sin = [−sin, sin, 0…] (the columns past rotaryDim pass through).
   */
  private readonly rotary = new Map<number, { cos: tf.Tensor; sin: tf.Tensor }>();
  /** rotate-half as a product, x·P = [x2, x1, 0…] over the rotary columns ([dh, dh], made on first use). */
  private rotateHalf?: Weight;
  private disposed = false;

  constructor(cfg: ModelConfig, weights: ModelWeights, opts: { trainable?: boolean } = {}) {
    this.cfg = cfg;
    this.trainable = opts.trainable ?? false;
    const keep = (t: tf.Tensor) => (this.trainable ? tf.variable(t, true) : tf.keep(t));
    const { nHeads: H, nKvHeads: Hkv, dModel: d, dHead: dh } = cfg;
    if (H % Hkv !== 0) throw new CircuitryError(`${H} attention heads cannot be grouped over ${Hkv} key/value heads`);
    const group = H / Hkv;
    const D = H * dh;
    const norm = (n: NormWeights | undefined): NormParams | undefined => (n ? { w: keep(host(n.w)), ...(n.b ? { b: keep(host(n.b)) } : {}) } : undefined);
    // grouped-query attention ungrouped (TransformerLens ungroup_grouped_query_attention): kv head
    // g's columns repeated for each of its query heads, so every query head has its own k and v
    const ungroup = (t: tf.Tensor, rows: number) => ungroupColumns(t, rows, Hkv, group, dh);
    this.layers = weights.layers.map((lw) => {
      // tf.tidy cannot return a record of Weights, so scope by hand: keep() marks survivors
      tf.engine().startScope();
      try {
        const a = lw.attn;
        const wqkv = tf.concat([host(a.wQ), ungroup(host(a.wK), d), ungroup(host(a.wV), d)], 1);
        const hasBias = a.bQ !== undefined || a.bK !== undefined || a.bV !== undefined;
        const bias = (t: HostTensor | undefined, kv: boolean) => (t ? (kv ? ungroup(host(t), 1) : host(t)) : tf.zeros([D]));
        const bqkv = hasBias ? tf.concat([bias(a.bQ, false), bias(a.bK, true), bias(a.bV, true)]) : undefined;
        const fold = !this.trainable && lw.ln1 !== undefined;
        const lnW = fold ? tf.reshape(host(lw.ln1!.w), [1, d, 1]) : undefined;
        const lnB = fold && lw.ln1!.b ? tf.reshape(host(lw.ln1!.b), [1, d, 1]) : undefined;
        const rawHeads = (i: number) => tf.transpose(tf.reshape(tf.slice(wqkv, [0, i * D], [d, D]), [d, H, dh]), [1, 0, 2]);
        const heads = (i: number) => (lnW ? tf.mul(rawHeads(i), lnW) : rawHeads(i));
        const headBias = (i: number) => {
          const b = bqkv ? tf.reshape(tf.slice(bqkv, [i * D], [D]), [H, 1, dh]) : tf.zeros([H, 1, dh]);
          return lnB ? tf.add(b, tf.sum(tf.mul(rawHeads(i), lnB), 1, true)) : b;
        };
        const wO = host(a.wO);
        const [bQ, bK, bV] = [headBias(0), headBias(1), headBias(2)];
        const each = tf.reshape(tf.stack([heads(0), heads(1), heads(2)], 1), [3 * H, d, dh]);
        const trainGrouped = this.trainable && group > 1;
        const layer: Layer = {
          ln1: norm(lw.ln1),
          wQKV: new Weight(wqkv, this.trainable && !trainGrouped),
          bQKV: bqkv ? keep(bqkv) : undefined,
          heads: { each: new Weight(each, false), bias: tf.keep(tf.stack([bQ, bK, bV], 1)), colSums: tf.keep(tf.sum(each, 1, true)) },
          bQ: tf.keep(bQ),
          bK: tf.keep(bK),
          bV: tf.keep(bV),
          headLnFolded: fold,
          wO: new Weight(wO, this.trainable),
          wOHeads: new Weight(tf.reshape(wO, [H, dh, d]), false),
          bO: a.bO ? keep(host(a.bO)) : undefined,
          postAttn: norm(lw.postAttnNorm),
          ln2: norm(lw.ln2),
          postMlp: norm(lw.postMlpNorm),
        };
        if (trainGrouped) {
          const v = (t: HostTensor | undefined) => (t ? tf.variable(host(t), true) : undefined);
          layer.grouped = { q: v(a.wQ)!, k: v(a.wK)!, v: v(a.wV)!, bQ: v(a.bQ), bK: v(a.bK), bV: v(a.bV) };
          if (layer.bQKV) {
            layer.bQKV.dispose();
            layer.bQKV = undefined;
          }
        }
        const m = lw.mlp;
        if (m) {
          const dm = cfg.dMlp;
          // a gated MLP's two input projections as one product: [W_gate | W_in]
          const wIn = m.wGate ? tf.concat([host(m.wGate), host(m.wIn)], 1) : host(m.wIn);
          const anyBias = m.bIn !== undefined || m.bGate !== undefined;
          const orZeros = (t: HostTensor | undefined) => (t ? host(t) : tf.zeros([dm]));
          layer.wIn = new Weight(wIn, this.trainable);
          layer.bIn = anyBias ? keep(m.wGate ? tf.concat([orZeros(m.bGate), orZeros(m.bIn)]) : orZeros(m.bIn)) : undefined;
          layer.wOut = new Weight(host(m.wOut), this.trainable);
          layer.bOut = m.bOut ? keep(host(m.bOut)) : undefined;
        }
        return layer;
      } finally {
        tf.engine().endScope();
      }
    });
    this.wte = keep(host(weights.embed));
    this.wpe = weights.posEmbed ? keep(host(weights.posEmbed)) : undefined;
    if (cfg.positional === 'learned' && !this.wpe) throw new CircuitryError('learned positions need a position embedding (posEmbed)');
    this.lnF = norm(weights.lnF);
    // lm_head's [V, d] layout is W_U's rows; a trainable tied model reads the live wte in forward
    const tied = weights.unembed === undefined;
    if (!this.trainable) this.wU = tied ? new RowsWeight(this.wte, false) : new RowsWeight(tf.keep(host(weights.unembed!)), true);
    else if (!tied) this.wU = new Weight(tf.tidy(() => tf.transpose(host(weights.unembed!))), true);
  }

  /**
   * The unembedding's rows of `ids` (in that order), for ForwardOptions.vocabulary; undefined for
   * a trainable model, whose unembedding changes. The caller disposes it.
   */
  vocabularySubset(ids: readonly number[]): VocabularySubset | undefined {
    if (this.trainable || !(this.wU instanceof RowsWeight)) return undefined;
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= this.cfg.dVocab) throw new CircuitryError(`token ${id} is outside the vocabulary [0, ${this.cfg.dVocab - 1}]`);
    const rows = this.wU.rows;
    return new VocabularySubset(ids, tf.tidy(() => tf.gather(rows, tf.tensor1d(ids as number[], 'int32')) as tf.Tensor2D));
  }

  /** W_U of an untied model as lm_head's rows [V, d] (a tensor the caller disposes). */
  private unembedRows(): tf.Tensor {
    return this.wU instanceof RowsWeight ? this.wU.rows.clone() : tf.tidy(() => tf.transpose((this.wU as Weight).w));
  }

  /** Trainable variables (only when constructed with trainable: true). */
  variables(): tf.Variable[] {
    if (!this.trainable) return [];
    const vars: tf.Tensor[] = [this.wte];
    if (this.wpe) vars.push(this.wpe);
    const norm = (n: NormParams | undefined) => {
      if (n) vars.push(n.w, ...(n.b ? [n.b] : []));
    };
    const opt = (t: tf.Tensor | undefined) => {
      if (t) vars.push(t);
    };
    norm(this.lnF);
    if (!this.cfg.tiedEmbeddings) vars.push((this.wU as Weight).w);
    for (const l of this.layers) {
      norm(l.ln1);
      if (l.grouped) [l.grouped.q, l.grouped.k, l.grouped.v, l.grouped.bQ, l.grouped.bK, l.grouped.bV].forEach(opt);
      else vars.push(l.wQKV.w);
      opt(l.bQKV);
      vars.push(l.wO.w);
      opt(l.bO);
      norm(l.postAttn);
      norm(l.ln2);
      if (l.wIn) {
        vars.push(l.wIn.w);
        opt(l.bIn);
        vars.push(l.wOut!.w);
        opt(l.bOut);
      }
      norm(l.postMlp);
    }
    return vars as tf.Variable[];
  }

  /**
   * The weights as the family-neutral description (host copies), k/v regrouped to the
   * checkpoint's nKvHeads: what an adapter's toTensors writes back in the family's own names.
   * Biases absent from the checkpoint come back as zeros where a sibling had one.
   */
  description(): ModelWeights {
    const { nHeads: H, nKvHeads: Hkv, dHead: dh, dMlp: dm } = this.cfg;
    const D = H * dh;
    const group = H / Hkv;
    const hostOf = (t: tf.Tensor): HostTensor => ({ shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) });
    const hostOfNew = (f: () => tf.Tensor): HostTensor => {
      const t = tf.tidy(f);
      const h = hostOf(t);
      t.dispose();
      return h;
    };
    const norm = (n: NormParams | undefined): NormWeights | undefined => (n ? { w: hostOf(n.w), ...(n.b ? { b: hostOf(n.b) } : {}) } : undefined);
    // columns [start, start + n) of a [rows, cols] matrix (or a vector), and the first query head of each kv group
    const cols = (t: HostTensor, start: number, n: number): HostTensor => {
      const rows = t.shape.length === 1 ? 1 : t.shape[0];
      const c = t.shape.length === 1 ? t.shape[0] : t.shape[1];
      const out = new Float32Array(rows * n);
      for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * c + start, r * c + start + n), r * n);
      return { shape: t.shape.length === 1 ? [n] : [rows, n], data: out };
    };
    const regroup = (t: HostTensor, start: number): HostTensor => {
      if (group === 1) return cols(t, start, D);
      const parts = Array.from({ length: Hkv }, (_, g) => cols(t, start + g * group * dh, dh));
      const rows = t.shape.length === 1 ? 1 : t.shape[0];
      const out = new Float32Array(rows * Hkv * dh);
      for (let r = 0; r < rows; r++) parts.forEach((p, g) => out.set(p.data.subarray(r * dh, (r + 1) * dh), r * Hkv * dh + g * dh));
      return { shape: t.shape.length === 1 ? [Hkv * dh] : [rows, Hkv * dh], data: out };
    };
    const layers: LayerWeights[] = this.layers.map((l) => {
      const g = l.grouped;
      const wqkv = g ? hostOfNew(() => tf.concat([g.q, ungroupColumns(g.k, g.k.shape[0], Hkv, group, dh), ungroupColumns(g.v, g.v.shape[0], Hkv, group, dh)], 1)) : hostOf(l.wQKV.w);
      const bqkv = g && (g.bQ || g.bK || g.bV)
        ? hostOfNew(() => tf.concat([g.bQ ?? tf.zeros([D]), ungroupColumns(g.bK ?? tf.zeros([Hkv * dh]), 1, Hkv, group, dh), ungroupColumns(g.bV ?? tf.zeros([Hkv * dh]), 1, Hkv, group, dh)]))
        : l.bQKV
          ? hostOf(l.bQKV)
          : undefined;
      const wIn = l.wIn ? hostOf(l.wIn.w) : undefined;
      const bIn = l.bIn ? hostOf(l.bIn) : undefined;
      const gated = this.cfg.gatedMlp;
      return {
        ln1: norm(l.ln1),
        attn: {
          wQ: cols(wqkv, 0, D),
          wK: regroup(wqkv, D),
          wV: regroup(wqkv, 2 * D),
          ...(bqkv ? { bQ: cols(bqkv, 0, D), bK: regroup(bqkv, D), bV: regroup(bqkv, 2 * D) } : {}),
          wO: hostOf(l.wO.w),
          ...(l.bO ? { bO: hostOf(l.bO) } : {}),
        },
        postAttnNorm: norm(l.postAttn),
        ln2: norm(l.ln2),
        mlp: wIn
          ? {
              wIn: gated ? cols(wIn, dm, dm) : wIn,
              ...(bIn ? { bIn: gated ? cols(bIn, dm, dm) : bIn } : {}),
              ...(gated ? { wGate: cols(wIn, 0, dm), ...(bIn ? { bGate: cols(bIn, 0, dm) } : {}) } : {}),
              wOut: hostOf(l.wOut!.w),
              ...(l.bOut ? { bOut: hostOf(l.bOut) } : {}),
            }
          : undefined,
        postMlpNorm: norm(l.postMlp),
      };
    });
    const unembed = this.cfg.tiedEmbeddings ? undefined : this.unembedRows();
    const out: ModelWeights = {
      embed: hostOf(this.wte),
      ...(this.wpe ? { posEmbed: hostOf(this.wpe) } : {}),
      layers,
      lnF: norm(this.lnF),
      ...(unembed ? { unembed: hostOf(unembed) } : {}),
    };
    unembed?.dispose();
    return out;
  }

  /** The weights in HuggingFace GPT-2 names (Conv1D layout), for saving a GPT-2-shaped model. */
  exportTensors(): Map<string, HostTensor> {
    const c = this.cfg;
    const gpt2Shaped =
      c.positional === 'learned' && !c.gatedMlp && !c.parallelAttnMlp && !c.postNorms && c.normalization !== 'RMS' && c.nKvHeads === c.nHeads && c.dHead * c.nHeads === c.dModel &&
      this.layers.every((l) => l.bQKV && l.bO && (!l.wIn || (l.bIn && l.bOut)));
    if (!gpt2Shaped) throw new CircuitryError(`exportTensors writes GPT-2 checkpoints; this ${c.family} model does not have the GPT-2 block`);
    const out = new Map<string, HostTensor>();
    const put = (name: string, t: tf.Tensor) => out.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
    put('wte.weight', this.wte);
    put('wpe.weight', this.wpe!);
    if (this.lnF) {
      put('ln_f.weight', this.lnF.w);
      put('ln_f.bias', this.lnF.b!);
    }
    if (!this.cfg.tiedEmbeddings) {
      const t = this.unembedRows();
      put('lm_head.weight', t);
      t.dispose();
    }
    this.layers.forEach((l, i) => {
      const p = `h.${i}`;
      if (l.ln1) {
        put(`${p}.ln_1.weight`, l.ln1.w);
        put(`${p}.ln_1.bias`, l.ln1.b!);
      }
      put(`${p}.attn.c_attn.weight`, l.wQKV.w);
      put(`${p}.attn.c_attn.bias`, l.bQKV!);
      put(`${p}.attn.c_proj.weight`, l.wO.w);
      put(`${p}.attn.c_proj.bias`, l.bO!);
      if (l.ln2) {
        put(`${p}.ln_2.weight`, l.ln2.w);
        put(`${p}.ln_2.bias`, l.ln2.b!);
      }
      if (l.wIn) {
        put(`${p}.mlp.c_fc.weight`, l.wIn.w);
        put(`${p}.mlp.c_fc.bias`, l.bIn!);
        put(`${p}.mlp.c_proj.weight`, l.wOut!.w);
        put(`${p}.mlp.c_proj.bias`, l.bOut!);
      }
    });
    return out;
  }
  /** Token ids as an int32 tensor, validated against the vocabulary and context length. */
  tokens(input: TokensInput): tf.Tensor2D {
    if (input instanceof tf.Tensor) return input;
    const rows = input;
    if (rows.length === 0) throw new CircuitryError('no prompts given (empty batch)');
    const p = rows[0].length;
    if (p === 0) throw new CircuitryError('empty prompt: at least one token is needed');
    if (p > this.cfg.nCtx) throw new CircuitryError(`prompt of ${p} tokens exceeds the model's context of ${this.cfg.nCtx}`);
    const flat = new Int32Array(rows.length * p);
    rows.forEach((row, b) => {
      if (row.length !== p) throw new CircuitryError(`prompt ${b} has ${row.length} tokens but prompt 0 has ${p}: a batch needs one length`);
      row.forEach((id, i) => {
        if (!Number.isInteger(id) || id < 0 || id >= this.cfg.dVocab) {
          throw new CircuitryError(`token id ${id} (prompt ${b}, position ${i}) is outside the vocabulary [0, ${this.cfg.dVocab - 1}]`);
        }
        flat[b * p + i] = id;
      });
    });
    return tf.tensor2d(flat, [rows.length, p], 'int32');
  }

  /**
   * The forward pass: logits [b, p, V] (or the residual stream at stopAtLayer). Hooks read or
   * replace activations by name; hook_{q,k,v}_input and hook_result switch on when hooked.
   */
  forward(input: TokensInput, opts: ForwardOptions = {}): tf.Tensor {
    this.assertAlive();
    return tf.tidy(() => this.forwardRaw(input, opts));
  }

  /** Runs once and returns the logits with the named activations (all caller-owned). */
  runWithCache(input: TokensInput, names: readonly HookName[], opts: ForwardOptions = {}): { logits: tf.Tensor; cache: Map<HookName, tf.Tensor> } {
    const cache = new Map<HookName, tf.Tensor>();
    const capture: HookFn = (act, name) => {
      cache.set(name, tf.keep(act.clone()));
    };
    const hooks = mergeHooks(opts.hooks, new Map(names.map((n) => [n, capture])));
    const logits = this.forward(input, { ...opts, hooks });
    for (const n of names) {
      if (!cache.has(n)) {
        logits.dispose();
        cache.forEach((t) => t.dispose());
        throw new CircuitryError(`hook '${n}' was not reached: ${describeHookProblem(n, this.cfg, opts)}`);
      }
    }
    return { logits, cache };
  }

  /** Forward with hooks (TransformerLens' run_with_hooks). */
  runWithHooks(input: TokensInput, hooks: Hooks, opts: ForwardOptions = {}): tf.Tensor {
    return this.forward(input, { ...opts, hooks });
  }

  /**
   * The gradient of a scalar of the output with respect to the activations at `names`
   * (d scalar / d activation, each of the activation's shape), and the scalar's value.
   */
  gradients(
    input: TokensInput,
    names: readonly HookName[],
    scalar: (logits: tf.Tensor) => tf.Scalar,
    opts: ForwardOptions = {},
  ): { value: number; grads: Map<HookName, tf.Tensor> } {
    this.assertAlive();
    const tokens = this.tokens(input);
    const [b, p] = tokens.shape;
    try {
      // Gradients at a hook are gradients w.r.t. a zero added there (tfjs differentiates inputs only).
      const zeros = names.map((n) => tf.zeros(hookShape(n, this.cfg, b, p, opts)));
      const f = (...zs: tf.Tensor[]) => {
        const added = new Map<HookName, HookFn>(names.map((n, i) => [n, (act: tf.Tensor) => tf.add(act, zs[i])]));
        const hooks = mergeHooks(opts.hooks, added);
        return scalar(this.forwardRaw(tokens, { ...opts, hooks }));
      };
      const { value, grads } = tf.valueAndGrads(f)(zeros);
      const v = value.dataSync()[0];
      value.dispose();
      zeros.forEach((z) => z.dispose());
      return { value: v, grads: new Map(names.map((n, i) => [n, grads[i]])) };
    } finally {
      if (!(input instanceof tf.Tensor)) tokens.dispose();
    }
  }

  /**
   * What head `heads[t]` of layer l computes as its q, k or v from the residual stream x[t]:
   * LN1(x[t]) · W[heads[t]] + b, for x [T, n, d] → [T, n, d_head] (before any rotary: what
   * attn.hook_q/k/v see). The patching engine uses it
   * to recompute the few head inputs a sparse patch changes, without splitting every head.
   */
  headInputProjection(l: number, which: 'q' | 'k' | 'v', heads: readonly number[], x: tf.Tensor): tf.Tensor {
    const L = this.layers[l];
    const j = which === 'q' ? 0 : which === 'k' ? 1 : 2;
    const b = [L.bQ, L.bK, L.bV][j];
    const idx = tf.tensor1d(heads as number[], 'int32');
    const rows = tf.tensor1d(heads.map((h) => 3 * h + j), 'int32');
    let normed: tf.Tensor;
    if (L.headLnFolded && this.cfg.normalization === 'RMS') normed = tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), this.cfg.lnEps)));
    else if (L.headLnFolded) {
      const { centered, rstd } = standardize(x, this.cfg.lnEps);
      normed = tf.mul(centered, rstd);
    } else normed = this.norm(x, L.ln1);
    return tf.add(bmm(normed, tf.gather(L.heads.each.w, rows)), tf.gather(b, idx));
  }

  /**
   * Layer l's post-attention norm (Gemma-2) applied to x + b_O, for x a sum of per-head outputs
   * (attn.hook_result summed over heads) of any shape [..., d]: what the block adds to the
   * residual stream. The patching engine evaluates it on mixed head outputs, for edges from a head
   * that are patched inside the norm. Without a post-attention norm: x + b_O.
   */
  attnPostNorm(l: number, x: tf.Tensor): tf.Tensor {
    const L = this.layers[l];
    const withBias = L.bO ? tf.add(x, L.bO) : x;
    return L.postAttn ? this.norm(withBias, L.postAttn) : withBias;
  }

  /**
   * Layer l's per-head attention weights with the first norm's weight folded in, for the fused
   * attribution gradient (family-neutral; k/v ungrouped): q, k, v [H, d, dh] = diag(w)·W; their
   * biases bQ, bK, bV [3·… → H, 1, dh] = b_norm·W + b; o [H, dh, d] = W_O per head. Caller-owned.
   */
  foldedHeadWeights(l: number): { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor; bQ: tf.Tensor; bK: tf.Tensor; bV: tf.Tensor; o: tf.Tensor } {
    this.assertAlive();
    const L = this.layers[l];
    return tf.tidy(() => {
      const fold = (w: tf.Tensor, b: tf.Tensor) => {
        // folded at load for frozen models with a norm; otherwise fold here
        if (L.headLnFolded || !L.ln1) return [w, b.clone()] as const;
        const d = this.cfg.dModel;
        const lnW = tf.reshape(L.ln1.w, [1, d, 1]);
        const bias = L.ln1.b ? tf.add(b, tf.sum(tf.mul(w, tf.reshape(L.ln1.b, [1, d, 1])), 1, true)) : b.clone();
        return [tf.mul(w, lnW), bias] as const;
      };
      // W_q, W_k or W_v of every head: rows j, j + 3, … of heads.each
      const each = (j: number) => tf.gather(L.heads.each.w, tf.range(j, 3 * this.cfg.nHeads, 3, 'int32'));
      const [q, bQ] = fold(each(0), L.bQ);
      const [k, bK] = fold(each(1), L.bK);
      const [v, bV] = fold(each(2), L.bV);
      return { q, k, v, bQ, bK, bV, o: L.wOHeads.w.clone() };
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const ts: (tf.Tensor | undefined)[] = [this.wte, this.wpe, this.lnF?.w, this.lnF?.b];
    for (const l of this.layers) {
      for (const w of [l.wQKV, l.heads.each, l.wO, l.wOHeads, l.wIn, l.wOut]) w?.dispose();
      tf.dispose([l.heads.bias, l.heads.colSums]);
      ts.push(l.bQKV, l.bQ, l.bK, l.bV, l.bO, l.bIn, l.bOut);
      if (l.grouped) ts.push(l.grouped.q, l.grouped.k, l.grouped.v, l.grouped.bQ, l.grouped.bK, l.grouped.bV);
      for (const n of [l.ln1, l.postAttn, l.ln2, l.postMlp]) ts.push(n?.w, n?.b);
    }
    for (const { cos, sin } of this.rotary.values()) ts.push(cos, sin);
    this.rotary.clear();
    this.rotateHalf?.dispose();
    this.wU?.dispose();
    ts.forEach((t) => t?.dispose());
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('this Transformer has been disposed');
  }

  private forwardRaw(input: TokensInput, opts: ForwardOptions): tf.Tensor {
    const cfg = this.cfg;
    const hooks = toHookMap(opts.hooks);
    const hook = (name: HookName, act: tf.Tensor): tf.Tensor => {
      const fn = hooks.get(name);
      if (!fn) return act;
      const out = fn(act, name);
      if (!out) return act;
      if (out.shape.length !== act.shape.length || out.shape.some((s, i) => s !== act.shape[i])) {
        throw new Error(`hook ${name} returned shape [${out.shape}] for an activation of shape [${act.shape}]`);
      }
      return out;
    };
    const start = opts.startAtLayer ?? 0;
    const stop = opts.stopAtLayer ?? cfg.nLayers;
    if (start < 0 || start > cfg.nLayers || stop < start || stop > cfg.nLayers) {
      throw new CircuitryError(`layers out of range: start ${start}, stop ${stop} for a ${cfg.nLayers}-layer model`);
    }
    let resid: tf.Tensor;
    if (start > 0) {
      if (!opts.residual) throw new Error('startAtLayer > 0 needs the residual stream (opts.residual)');
      resid = opts.residual;
    } else {
      const tokens = this.tokens(input);
      const [b, p] = tokens.shape;
      const gathered = tf.reshape(tf.gather(this.wte, tf.reshape(tokens, [-1])), [b, p, cfg.dModel]);
      // hook_embed is what enters the residual stream from the tokens: after any embedding scale
      const embed = hook('hook_embed', cfg.embedScale === 1 ? gathered : tf.mul(gathered, cfg.embedScale));
      if (this.wpe) {
        const pos = hook('hook_pos_embed', tf.add(tf.expandDims(tf.slice(this.wpe, [0, 0], [p, cfg.dModel]), 0), tf.zeros([b, 1, 1])));
        resid = tf.add(embed, pos);
      } else resid = embed;
    }
    const hooked = (l: number, h: Parameters<typeof blockHook>[1]) => hooks.has(blockHook(l, h));
    if (opts.lastQueryOnly && !opts.lastPositionOnly) throw new Error('lastQueryOnly needs lastPositionOnly');
    for (let l = start; l < stop; l++) {
      // the last block's queries onward at the last position only
      const trim = opts.lastQueryOnly === true && l === cfg.nLayers - 1;
      const split = opts.splitQkvInput || hooked(l, 'hook_q_input') || hooked(l, 'hook_k_input') || hooked(l, 'hook_v_input');
      const result = opts.useAttnResult || hooked(l, 'attn.hook_result');
      const input = resid;
      // Each block in its own tidy, so a deep model's intermediates do not pile up until the end
      // of the pass (gradients still work: the tape keeps what backprop needs). A hook that
      // holds on to a tensor past its block must tf.keep it.
      resid = tf.tidy(() => {
        let r = hook(blockHook(l, 'hook_resid_pre'), input);
        const own = opts.headInputs?.(l, r);
        const L = this.layers[l];
        // a post-attention norm (Gemma-2) applies to the block's summed output; hook_result is before it
        const attn = this.attention(l, r, own ?? split, result, hook, trim);
        const attnOut = hook(blockHook(l, 'hook_attn_out'), L.postAttn ? this.norm(attn, L.postAttn) : attn);
        if (trim) r = lastPosition(r);
        if (cfg.parallelAttnMlp && !cfg.attnOnly) {
          // attention and MLP both read the block input; there is no resid_mid
          const mlpIn = hook(blockHook(l, 'hook_mlp_in'), r);
          const mlpOut = hook(blockHook(l, 'hook_mlp_out'), this.mlp(l, mlpIn, hook));
          return hook(blockHook(l, 'hook_resid_post'), tf.add(tf.add(r, attnOut), mlpOut));
        }
        r = hook(blockHook(l, 'hook_resid_mid'), tf.add(r, attnOut));
        if (!cfg.attnOnly) {
          const mlpIn = hook(blockHook(l, 'hook_mlp_in'), r);
          const mlpOut = hook(blockHook(l, 'hook_mlp_out'), this.mlp(l, mlpIn, hook));
          r = tf.add(r, mlpOut);
        }
        return hook(blockHook(l, 'hook_resid_post'), r);
      });
    }
    if (stop < cfg.nLayers) return resid;
    const [b, p0] = resid.shape;
    const last = opts.lastPositionOnly ? lastPosition(resid) : resid;
    const p = opts.lastPositionOnly ? 1 : p0;
    const normed = hook('ln_final.hook_normalized', this.norm(last, this.lnF));
    const flat = tf.reshape(normed, [b * p, cfg.dModel]);
    // A trainable tied model must read the live embedding matrix, not the frozen copy.
    const wU = this.wU;
    const subset = opts.vocabulary;
    const raw = subset
      ? tf.matMul(flat, subset.rows, false, true)
      : wU instanceof RowsWeight
        ? wU.product(flat as tf.Tensor2D)
        : wU
          ? linear(flat, wU)
          : matmul(flat, tf.transpose(this.wte));
    const logits = cfg.finalSoftCap === null ? raw : softCap(raw, cfg.finalSoftCap);
    return tf.reshape(logits, [b, p, subset ? subset.ids.length : cfg.dVocab]);
  }

  private norm(x: tf.Tensor, n: NormParams | undefined): tf.Tensor {
    if (!n) return x;
    return this.cfg.normalization === 'RMS' ? rmsNorm(x, n.w, this.cfg.lnEps) : layerNorm(x, n.w, n.b, this.cfg.lnEps);
  }

  /**
   * Rotary position embedding of x [b, p, H, dh] at positions offset … offset + p − 1 (rotate-half
   * pairing): x·cos + rotateHalf(x)·sin with the tables over the whole head width and rotateHalf as
   * a product with a permutation (x1·cos − x2·sin and x2·cos + x1·sin, the same floats as with
   * slices, in three elementwise ops and one small product instead of slices and a concatenation).
   */
  private rotate(x: tf.Tensor, offset: number, pAll: number): tf.Tensor {
    const [b, p, H, dh] = x.shape as [number, number, number, number];
    const r = this.cfg.rotaryDim;
    const half = r / 2;
    let table = this.rotary.get(pAll);
    if (!table || table.cos.isDisposed) {
      const inv = this.cfg.rotaryInvFreq;
      const cos = new Float32Array(pAll * dh);
      const sin = new Float32Array(pAll * dh);
      for (let i = 0; i < pAll; i++) {
        for (let j = 0; j < half; j++) {
          // the angle rounded through float32, as transformers computes it
          const angle = Math.fround(i * inv[j]);
          cos[i * dh + j] = cos[i * dh + half + j] = Math.cos(angle);
          sin[i * dh + j] = -Math.sin(angle);
          sin[i * dh + half + j] = Math.sin(angle);
        }
        cos.fill(1, i * dh + r, (i + 1) * dh);
      }
      table = { cos: tf.keep(tf.tensor3d(cos, [pAll, 1, dh])), sin: tf.keep(tf.tensor3d(sin, [pAll, 1, dh])) };
      this.rotary.set(pAll, table);
    }
    if (!this.rotateHalf) {
      const perm = new Float32Array(dh * dh);
      for (let j = 0; j < half; j++) {
        perm[(half + j) * dh + j] = 1; // column j takes x2[j]
        perm[j * dh + half + j] = 1; // column half + j takes x1[j]
      }
      this.rotateHalf = new Weight(tf.tensor2d(perm, [dh, dh]), false);
    }
    const cos = p === pAll ? table.cos : tf.slice(table.cos, [offset, 0, 0], [p, 1, dh]);
    const sin = p === pAll ? table.sin : tf.slice(table.sin, [offset, 0, 0], [p, 1, dh]);
    const swapped = tf.reshape(linear(tf.reshape(x, [b * p * H, dh]), this.rotateHalf), [b, p, H, dh]);
    return tf.add(tf.mul(x, cos), tf.mul(swapped, sin));
  }

  /**
   * The attention block's output; with `trim`, at the last position only ([b, 1, d]). `inputs`:
   * false for the shared stream (fused q/k/v), true to split each head's q/k/v input (with their
   * hooks), or the per-head inputs of ForwardOptions.headInputs.
   */
  private attention(l: number, resid: tf.Tensor, inputs: boolean | HeadInputs, perHeadResult: boolean, hook: (n: HookName, t: tf.Tensor) => tf.Tensor, trim = false): tf.Tensor {
    const cfg = this.cfg;
    const { nHeads: H, dModel: d, dHead: dh } = cfg;
    const L = this.layers[l];
    const [b, pAll] = resid.shape;
    let q: tf.Tensor, k: tf.Tensor, v: tf.Tensor; // [b, p, H, dh]
    if (inputs === false) {
      const x = tf.reshape(this.norm(resid, L.ln1), [b * pAll, d]);
      const qkv = L.grouped ? this.groupedQkv(L.grouped, x) : addBias(linear(x, L.wQKV), L.bQKV); // [b*p, 3·H·dh]
      [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.reshape(t, [b, pAll, H, dh]));
    } else {
      let perHead: HeadInputs;
      if (inputs === true) {
        // broadcast rather than tf.tile: Tile is slow on wasm
        const tiled = tf.add(tf.expandDims(resid, 2), tf.zeros([1, 1, H, 1])); // [b, p, H, d]
        const own = (['hook_q_input', 'hook_k_input', 'hook_v_input'] as const).map((name) => tf.transpose(hook(blockHook(l, name), tiled), [2, 0, 1, 3]));
        // head-major: unstacking [n, 3H, d] copies n·3H short runs, slow for large batches of small d
        perHead = { rows: tf.reshape(tf.stack(own, 1), [H * 3, b * pAll, d]), perHead: 3, headMajor: true };
      } else perHead = inputs;
      const qkv = this.headInputQkv(L, perHead); // [H, 3, b·pAll, dh]
      [q, k, v] = tf.unstack(tf.transpose(qkv, [1, 2, 0, 3])).map((t) => tf.reshape(t, [b, pAll, H, dh]));
    }
    if (trim) q = lastPosition(q);
    const p = trim ? 1 : pAll; // query positions
    q = hook(blockHook(l, 'attn.hook_q'), q);
    k = hook(blockHook(l, 'attn.hook_k'), k);
    v = hook(blockHook(l, 'attn.hook_v'), v);
    if (cfg.positional === 'rotary') {
      // hook_q/hook_k before the rotation, hook_rot_q/hook_rot_k after it (as TransformerLens)
      q = hook(blockHook(l, 'attn.hook_rot_q'), this.rotate(q, pAll - p, pAll));
      k = hook(blockHook(l, 'attn.hook_rot_k'), this.rotate(k, 0, pAll));
    }
    const qh = tf.transpose(q, [0, 2, 1, 3]); // [b, H, p, dh]
    const kT = tf.transpose(k, [0, 2, 3, 1]); // [b, H, dh, pAll]
    const vh = tf.transpose(v, [0, 2, 1, 3]);
    const scaled = tf.mul(matmul(qh, kT), cfg.attnScale);
    const raw = cfg.attnSoftCap === null ? scaled : softCap(scaled, cfg.attnSoftCap);
    // (the last query alone sees every key unless a window hides the earliest)
    const mask = attentionMask(p, pAll, cfg.slidingWindows[l] ?? null);
    const scores = hook(blockHook(l, 'attn.hook_attn_scores'), mask ? tf.add(raw, mask) : raw);
    const pattern = hook(blockHook(l, 'attn.hook_pattern'), tf.softmax(scores, -1));
    const z = hook(blockHook(l, 'attn.hook_z'), tf.transpose(matmul(pattern, vh), [0, 2, 1, 3])); // [b, p, H, dh]
    if (perHeadResult) {
      const zh = tf.reshape(tf.transpose(z, [2, 0, 1, 3]), [H, b * p, dh]);
      const res = tf.transpose(tf.reshape(linear(zh, L.wOHeads), [H, b, p, d]), [1, 2, 0, 3]); // [b, p, H, d]
      return addBias(tf.sum(hook(blockHook(l, 'attn.hook_result'), res), 2), L.bO);
    }
    return addBias(tf.reshape(linear(tf.reshape(z, [b * p, H * dh]), L.wO), [b, p, d]), L.bO);
  }

  /** x·[W_q | W_k | W_v] + b of a trainable grouped model, its k/v ungrouped on the fly (differentiable). */
  private groupedQkv(g: NonNullable<Layer['grouped']>, x: tf.Tensor): tf.Tensor {
    const { nHeads: H, nKvHeads: Hkv, dHead: dh, dModel: d } = this.cfg;
    const group = H / Hkv;
    const w = tf.concat([g.q, ungroupColumns(g.k, d, Hkv, group, dh), ungroupColumns(g.v, d, Hkv, group, dh)], 1);
    const y = matmul(x, w);
    if (!g.bQ && !g.bK && !g.bV) return y;
    const orZeros = (b: tf.Tensor | undefined, n: number) => b ?? tf.zeros([n]);
    return tf.add(y, tf.concat([orZeros(g.bQ, H * dh), ungroupColumns(orZeros(g.bK, Hkv * dh), 1, Hkv, group, dh), ungroupColumns(orZeros(g.bV, Hkv * dh), 1, Hkv, group, dh)]));
  }

  /** q, k and v of every head from its own residual input: [H, 3, n, dh]. */
  private headInputQkv(L: Layer, inputs: HeadInputs): tf.Tensor {
    const { nHeads: H, dHead: dh } = this.cfg;
    const { rows: x, perHead: G, headMajor } = inputs;
    const [n, R, d] = (headMajor ? [x.shape[1], x.shape[0], x.shape[2]] : x.shape) as [number, number, number];
    const HG = H * G;
    if (R < HG || d !== this.cfg.dModel) throw new Error(`head inputs [${x.shape.join(', ')}]: expected ${headMajor ? `[≥ ${HG}, n, ${this.cfg.dModel}]` : `[n, ≥ ${HG}, ${this.cfg.dModel}]`}`);
    const folded = L.headLnFolded;
    const { each, bias, colSums } = L.heads;
    // the products' operand [H·G, n, d]: the caller's extra rows go
    const normed = folded ? x : this.norm(x, L.ln1);
    const rows = headMajor ? (R === HG ? normed : tf.slice(normed, [0, 0, 0], [HG, n, d])) : tf.transpose(R === HG ? normed : tf.slice(normed, [0, 0, 0], [n, HG, d]), [1, 0, 2]);
    // G = 3: head h's q input times W_q,h only (and k, v likewise), one batched product; G = 1:
    // each head's input times its three matrices, broadcast over them
    let y = G === 1 ? sharedInputProduct(rows, tf.reshape(each.w, [H, 3, d, dh])) : tf.reshape(linear(rows, each), [H, 3, n, dh]);
    if (folded) {
      // LN1 is folded into the weights: (x − μ)W·rstd = (xW − μ·colsum W)·rstd, centred after the
      // product ([.., dh] wide) instead of before it ([.., d] wide); var = E[x²] − μ². RMSNorm
      // has no centring: xW·rstd with rstd = 1/√(E[x²] + eps).
      // [n, R, 1] (or [R, n, 1]) → [H, G, n, 1]
      const byHead = (t: tf.Tensor) => tf.reshape(headMajor ? tf.slice(t, [0, 0, 0], [HG, n, 1]) : tf.transpose(tf.slice(tf.reshape(t, [n, R]), [0, 0], [n, HG])), [H, G, n, 1]);
      const [mu, meanSquare] = rowMoments(x);
      let rstd: tf.Tensor;
      if (this.cfg.normalization === 'RMS') rstd = byHead(tf.rsqrt(tf.add(meanSquare, this.cfg.lnEps)));
      else {
        const variance = tf.sub(meanSquare, tf.square(mu));
        rstd = byHead(tf.rsqrt(tf.add(variance, this.cfg.lnEps)));
        y = tf.sub(y, tf.mul(byHead(mu), tf.reshape(colSums, [H, 3, 1, dh])));
      }
      y = tf.mul(y, rstd);
    }
    return tf.add(y, bias); // [H, 3, n, dh]
  }

  /** The MLP's output (after its post norm, when there is one). */
  private mlp(l: number, x: tf.Tensor, hook: (n: HookName, t: tf.Tensor) => tf.Tensor): tf.Tensor {
    const cfg = this.cfg;
    const L = this.layers[l];
    const [b, p, d] = x.shape;
    const dm = cfg.dMlp;
    const normed = tf.reshape(this.norm(x, L.ln2), [b * p, d]);
    const both = addBias(linear(normed, L.wIn!), L.bIn);
    const act = (t: tf.Tensor) => (cfg.act === 'relu' ? tf.relu(t) : cfg.act === 'gelu' ? geluErf(t) : cfg.act === 'silu' ? silu(t) : geluNew(t));
    let post: tf.Tensor;
    if (cfg.gatedMlp) {
      // hook_pre is the gate's pre-activation, hook_pre_linear the linear branch (as TransformerLens)
      const [gate, lin] = tf.split(both, 2, 1);
      const pre = hook(blockHook(l, 'mlp.hook_pre'), tf.reshape(gate, [b, p, dm]));
      const preLinear = hook(blockHook(l, 'mlp.hook_pre_linear'), tf.reshape(lin, [b, p, dm]));
      post = hook(blockHook(l, 'mlp.hook_post'), tf.mul(act(pre), preLinear));
    } else {
      const pre = hook(blockHook(l, 'mlp.hook_pre'), tf.reshape(both, [b, p, dm]));
      post = hook(blockHook(l, 'mlp.hook_post'), act(pre));
    }
    const out = tf.reshape(addBias(linear(tf.reshape(post, [b * p, dm]), L.wOut!), L.bOut), [b, p, d]);
    return L.postMlp ? this.norm(out, L.postMlp) : out;
  }
}

/** Some tokens' unembedding rows [n, d] (Transformer.vocabularySubset). */
export class VocabularySubset {
  constructor(
    readonly ids: readonly number[],
    readonly rows: tf.Tensor2D,
  ) {}

  dispose(): void {
    this.rows.dispose();
  }
}

/**
 * A trimmed activation of the last block under `lastQueryOnly` ([b, 1, …]) back at all p
 * positions, zeros before the last (what callers use where only the last position counts).
 */
export function atEveryPosition(x: tf.Tensor, p: number): tf.Tensor {
  if (x.shape[1] === p) return x;
  return tf.pad(x, x.shape.map((_, i): [number, number] => (i === 1 ? [p - x.shape[1]!, 0] : [0, 0])));
}

/** x[:, -1:] of a [b, p, …] tensor. */
function lastPosition(x: tf.Tensor): tf.Tensor {
  const p = x.shape[1]!;
  const begin = x.shape.map((_, i) => (i === 1 ? p - 1 : 0));
  const size = x.shape.map((s, i) => (i === 1 ? 1 : s));
  return tf.slice(x, begin, size);
}

const maskCache = new Map<string, tf.Tensor>();
/**
 * Additive attention mask [pQ, pK] for the last pQ of pK positions: 0 where query i sees key j
 * (j ≤ i, and i − window < j with a sliding window), a large negative number elsewhere; null
 * when every query sees every key (the last query alone, without a window that hides any key).
 */
function attentionMask(pQ: number, pK: number, window: number | null): tf.Tensor | null {
  if (pQ === 1 && (window === null || pK <= window)) return null;
  const key = `${pQ},${pK},${window}`;
  let m = maskCache.get(key);
  if (!m || m.isDisposed) {
    const data = new Float32Array(pQ * pK);
    for (let q = 0; q < pQ; q++) {
      const i = pK - pQ + q;
      for (let j = 0; j < pK; j++) if (j > i || (window !== null && j <= i - window)) data[q * pK + j] = -1e10;
    }
    m = tf.keep(tf.tensor2d(data, [pQ, pK]));
    maskCache.set(key, m);
  }
  return m;
}

function toHookMap(hooks: Hooks | undefined): ReadonlyMap<HookName, HookFn> {
  if (!hooks) return new Map();
  if (hooks instanceof Map) return hooks;
  return new Map(Object.entries(hooks).filter(([, f]) => f) as [HookName, HookFn][]);
}

/** Hooks applied in order: `first`'s hook, then `second`'s on its output. */
export function mergeHooks(first: Hooks | undefined, second: Hooks | undefined): Map<HookName, HookFn> {
  const a = toHookMap(first);
  const b = toHookMap(second);
  const out = new Map<HookName, HookFn>(a);
  for (const [name, g] of b) {
    const f = a.get(name);
    out.set(name, f ? (act, n) => g(f(act, n) ?? act, n) : g);
  }
  return out;
}

/** Hooks of the last block that see one position under `lastQueryOnly`. */
const LAST_QUERY_TRIMMED = new Set<string>([
  'attn.hook_q', 'attn.hook_rot_q', 'mlp.hook_pre_linear', 'attn.hook_attn_scores', 'attn.hook_pattern', 'attn.hook_z', 'attn.hook_result', 'hook_attn_out',
  'hook_resid_mid', 'hook_mlp_in', 'mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out', 'hook_resid_post',
]);

/** Whether `name` sees one position under `lastQueryOnly` (a hook of the last block after its keys and values). */
export function trimmedByLastQuery(name: HookName, cfg: ModelConfig): boolean {
  const parsed = parseHookName(name);
  return parsed !== undefined && parsed.layer === cfg.nLayers - 1 && LAST_QUERY_TRIMMED.has(parsed.hook);
}

/**
 * The shape of a hook's activation for a batch of b prompts of p tokens (with `lastQueryOnly`,
 * the last block's trimmed hooks have one query position).
 */
export function hookShape(name: HookName, cfg: ModelConfig, b: number, pAll: number, opts: Pick<ForwardOptions, 'lastQueryOnly'> = {}): number[] {
  const parsed = parseHookName(name);
  if (!parsed || (parsed.layer >= cfg.nLayers)) throw new CircuitryError(`unknown hook point '${name}' for a ${cfg.nLayers}-layer model`);
  const { nHeads: H, dModel: d, dHead: dh, dMlp: dm } = cfg;
  const p = opts.lastQueryOnly && trimmedByLastQuery(name, cfg) ? 1 : pAll;
  if (parsed.hook === 'hook_pos_embed' && cfg.positional !== 'learned') throw new CircuitryError(`hook '${name}' does not exist: the model's positions are rotary`);
  if (parsed.hook === 'hook_resid_mid' && cfg.parallelAttnMlp) throw new CircuitryError(`hook '${name}' does not exist: attention and MLP run in parallel`);
  switch (parsed.hook) {
    case 'hook_q_input':
    case 'hook_k_input':
    case 'hook_v_input':
    case 'attn.hook_result':
      return [b, p, H, d];
    case 'attn.hook_rot_q':
    case 'attn.hook_rot_k':
      if (cfg.positional !== 'rotary') throw new CircuitryError(`hook '${name}' does not exist: the model has no rotary embeddings`);
      return [b, p, H, dh];
    case 'attn.hook_q':
    case 'attn.hook_k':
    case 'attn.hook_v':
    case 'attn.hook_z':
      return [b, p, H, dh];
    case 'attn.hook_attn_scores':
    case 'attn.hook_pattern':
      return [b, H, p, pAll];
    case 'mlp.hook_pre_linear':
      if (!cfg.gatedMlp) throw new CircuitryError(`hook '${name}' does not exist: the model's MLP is not gated`);
      return [b, p, dm];
    case 'mlp.hook_pre':
    case 'mlp.hook_post':
      if (cfg.attnOnly) throw new CircuitryError(`hook '${name}' does not exist: the model is attention-only`);
      return [b, p, dm];
    case 'hook_mlp_in':
    case 'hook_mlp_out':
      if (cfg.attnOnly) throw new CircuitryError(`hook '${name}' does not exist: the model is attention-only`);
      return [b, p, d];
    default:
      return [b, p, d];
  }
}

function describeHookProblem(name: HookName, cfg: ModelConfig, opts: ForwardOptions): string {
  const parsed = parseHookName(name);
  if (!parsed) return 'not a hook name';
  if (parsed.layer >= cfg.nLayers) return `the model has ${cfg.nLayers} layers`;
  if (cfg.attnOnly && parsed.hook.includes('mlp')) return 'the model is attention-only';
  if (parsed.hook === 'hook_pos_embed' && cfg.positional !== 'learned') return 'the model has no learned position embedding (its positions are rotary)';
  if (parsed.hook.includes('hook_rot_') && cfg.positional !== 'rotary') return 'the model has no rotary embeddings';
  if (parsed.hook === 'mlp.hook_pre_linear' && !cfg.gatedMlp) return "the model's MLP is not gated";
  if (parsed.hook === 'hook_resid_mid' && cfg.parallelAttnMlp) return 'attention and MLP run in parallel: there is no resid_mid';
  if (opts.stopAtLayer !== undefined && parsed.layer >= opts.stopAtLayer) return `the run stopped at layer ${opts.stopAtLayer}`;
  if (opts.startAtLayer !== undefined && parsed.layer < opts.startAtLayer) return `the run started at layer ${opts.startAtLayer}`;
  return 'it is not computed in this run';
}
