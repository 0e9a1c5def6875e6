import * as tf from '@tensorflow/tfjs';
import type { Transformer } from '../model/transformer.js';
import type { HookFn, HookName } from '../model/hooks.js';
import { blockHook } from '../model/hooks.js';
import { bmm } from '../model/ops.js';
import type { CircuitGraph } from '../graph/graph.js';
import { CircuitryError } from '../errors.js';

/**
 * The masked edge forward (DESIGN.md, "Edge semantics"). Every destination d reads
 *   x_d = resid(current) + Σ_u (1 − m_ud) · (patch_u − current_u)
 * where current_u is source u's output in this very run and patch_u its output in the run we
 * patch from. m = 1 keeps an edge, m = 0 patches it; masks are tensors, so the metric can be
 * differentiated with respect to them (EAP is that gradient at m = 1).
 *
 * K masks are evaluated at once by stacking K copies of the batch: masks [K, nDst, nSrc] and a
 * run of B prompts give logits [K·B, p, V], copy k using mask k.
 */

/** Source outputs and residual streams of one unpatched run, reused by every masked forward. */
export class RunCache {
  constructor(
    readonly tokens: tf.Tensor2D, // [B, p]
    readonly sources: tf.Tensor, // [nSrc, B, p, d]
    readonly residPre: readonly tf.Tensor[], // per layer [B, p, d]
    readonly logits: tf.Tensor, // [B, p, V]
  ) {}

  get batch(): number {
    return this.tokens.shape[0];
  }

  dispose(): void {
    tf.dispose([this.tokens, this.sources, this.logits, ...this.residPre]);
  }
}

export interface MaskedForwardArgs {
  readonly run: RunCache;
  /** What a patched edge carries: [nSrc, B, p, d] (another run's sources, zeros, a mean). */
  readonly patch: tf.Tensor;
  /** [K, nDst, nSrc] (or [nDst, nSrc] for K = 1); 1 keeps the current run's output. */
  readonly masks: tf.Tensor;
  /**
   * Skip the layers below this one, starting from the cached residual stream. Valid only when
   * every mask entry of destinations below this layer is 1 (then those layers run unpatched).
   */
  readonly startAtLayer?: number;
}

interface LayerRows {
  heads: number; // first destination row of the layer's heads (rows h·3 + q|k|v, or h without qkv)
  mlp: number; // -1 when attention-only
  srcBefore: number; // sources preceding this layer's heads
}

export class PatchingEngine {
  readonly model: Transformer;
  readonly graph: CircuitGraph;
  private readonly rows: LayerRows[];
  private readonly logitsRow: number;

  constructor(model: Transformer, graph: CircuitGraph) {
    const { nLayers, nHeads, attnOnly } = model.cfg;
    const s = graph.shape;
    if (s.nLayers !== nLayers || s.nHeads !== nHeads || s.hasMlp === attnOnly) {
      throw new CircuitryError(
        `the graph (${s.nLayers} layers, ${s.nHeads} heads${s.hasMlp ? '' : ', no MLPs'}) does not fit the model (${nLayers} layers, ${nHeads} heads${attnOnly ? ', attention-only' : ''})`,
      );
    }
    this.model = model;
    this.graph = graph;
    this.rows = [];
    for (let l = 0; l < nLayers; l++) {
      this.rows.push({
        heads: graph.destinationIndex(s.qkv ? `a${l}.h0<q>` : `a${l}.h0`),
        mlp: s.hasMlp ? graph.destinationIndex(`m${l}`) : -1,
        srcBefore: graph.sourceIndex(`a${l}.h0`),
      });
    }
    this.logitsRow = graph.destinationIndex('logits');
  }

  /** Runs `tokens` unpatched and caches what masked forwards of that run need. */
  cacheRun(tokens: tf.Tensor2D): RunCache {
    const { nLayers: L, attnOnly } = this.model.cfg;
    const names: HookName[] = ['hook_embed', 'hook_pos_embed'];
    for (let l = 0; l < L; l++) {
      names.push(blockHook(l, 'hook_resid_pre'), blockHook(l, 'attn.hook_result'));
      if (!attnOnly) names.push(blockHook(l, 'hook_mlp_out'));
    }
    const { logits, cache } = this.model.runWithCache(tokens, names);
    const sources = tf.tidy(() => {
      const parts: tf.Tensor[] = [tf.expandDims(tf.add(cache.get('hook_embed')!, cache.get('hook_pos_embed')!), 0)];
      for (let l = 0; l < L; l++) {
        parts.push(tf.transpose(cache.get(blockHook(l, 'attn.hook_result'))!, [2, 0, 1, 3]));
        if (!attnOnly) parts.push(tf.expandDims(cache.get(blockHook(l, 'hook_mlp_out'))!, 0));
      }
      return tf.concat(parts, 0);
    });
    const residPre = Array.from({ length: L }, (_, l) => cache.get(blockHook(l, 'hook_resid_pre'))!);
    for (const [name, t] of cache) if (!name.endsWith('hook_resid_pre')) t.dispose();
    return new RunCache(tf.keep(tokens.clone()), sources, residPre, logits);
  }

  /** The masked forward pass: logits [K·B, p, V]. Call inside tf.tidy or dispose the result. */
  maskedForward(args: MaskedForwardArgs): tf.Tensor {
    const { run, patch } = args;
    const masks = args.masks.rank === 2 ? tf.expandDims(args.masks, 0) : args.masks;
    const K = masks.shape[0];
    const [B, p] = run.tokens.shape;
    const { dModel: d, nHeads: H, nLayers: L } = this.model.cfg;
    const bpd = B * p * d;
    const start = args.startAtLayer ?? 0;
    const patchFlat = tf.reshape(patch, [1, this.graph.nSrc, bpd]);
    // patch_u − current_u for every source produced so far, [K, produced, B·p·d], grown one
    // block at a time; each destination's delta is then a single product. Only the latest is
    // kept (the runtime frees each block's tensors); the tape keeps what backprop needs.
    let diffs: tf.Tensor | undefined;
    let produced = 0;
    const addSources = (current: tf.Tensor /* [K, n, bpd] */) => {
      const n = current.shape[1]!;
      const diff = tf.sub(tf.slice(patchFlat, [0, produced, 0], [1, n, bpd]), current);
      const next = tf.keep(diffs ? tf.concat([diffs, diff], 1) : diff);
      diffs?.dispose();
      diffs = next;
      produced += n;
    };
    // Σ_u (1 − m_ud)(patch_u − current_u) for the destination rows [row, row + R) → [K, R, B·p·d]
    const delta = (row: number, R: number, count: number) => {
      const coef = tf.sub(1, tf.slice(masks, [0, row, 0], [K, R, count]));
      return bmm(coef, count === produced ? diffs! : tf.slice(diffs!, [0, 0, 0], [K, count, bpd]));
    };
    const qkv = this.graph.shape.qkv;
    const hooks = new Map<HookName, HookFn>();
    if (start === 0) {
      let embed: tf.Tensor | undefined;
      hooks.set('hook_embed', (a) => {
        embed = a;
      });
      hooks.set('hook_pos_embed', (a) => {
        addSources(tf.reshape(tf.add(embed!, a), [K, 1, bpd]));
      });
    } else {
      const before = this.rows[start].srcBefore;
      const cached = tf.reshape(tf.slice(run.sources, [0, 0, 0, 0], [before, B, p, d]), [1, before, bpd]);
      addSources(K === 1 ? cached : tf.tile(cached, [K, 1, 1]));
    }
    for (let l = start; l < L; l++) {
      const r = this.rows[l];
      // one product for all of the layer's head inputs (rows h·3 + q|k|v, or h without q/k/v)
      let headDelta: tf.Tensor | undefined; // [K, H, 3 | 1, B·p·d]
      const headInput = (which: number) => (act: tf.Tensor) => {
        headDelta ??= tf.reshape(delta(r.heads, qkv ? 3 * H : H, r.srcBefore), [K, H, qkv ? 3 : 1, bpd]);
        const mine = tf.slice(headDelta, [0, 0, qkv ? which : 0, 0], [K, H, 1, bpd]);
        return tf.add(act, tf.reshape(tf.transpose(tf.reshape(mine, [K, H, B * p, d]), [0, 2, 1, 3]), [K * B, p, H, d]));
      };
      hooks.set(blockHook(l, 'hook_q_input'), headInput(0));
      hooks.set(blockHook(l, 'hook_k_input'), headInput(1));
      hooks.set(blockHook(l, 'hook_v_input'), headInput(2));
      hooks.set(blockHook(l, 'attn.hook_result'), (a) => {
        addSources(tf.reshape(tf.transpose(tf.reshape(a, [K, B, p, H, d]), [0, 3, 1, 2, 4]), [K, H, bpd]));
      });
      if (r.mlp >= 0) {
        hooks.set(blockHook(l, 'hook_mlp_in'), (a) => tf.add(a, tf.reshape(delta(r.mlp, 1, r.srcBefore + H), [K * B, p, d])));
        hooks.set(blockHook(l, 'hook_mlp_out'), (a) => {
          addSources(tf.reshape(a, [K, 1, bpd]));
        });
      }
    }
    hooks.set(blockHook(L - 1, 'hook_resid_post'), (a) => tf.add(a, tf.reshape(delta(this.logitsRow, 1, this.graph.nSrc), [K * B, p, d])));
    const tokens = K === 1 ? run.tokens : tf.tile(run.tokens, [K, 1]);
    const residual = start > 0 ? (K === 1 ? run.residPre[start] : tf.tile(run.residPre[start], [K, 1, 1])) : undefined;
    try {
      return this.model.forward(tokens as tf.Tensor2D, { hooks, splitQkvInput: true, useAttnResult: true, startAtLayer: start, residual });
    } finally {
      diffs?.dispose();
    }
  }

  /** The lowest layer with a destination whose mask row is not all ones (L when none). */
  firstPatchedLayer(mask: Float32Array): number {
    const g = this.graph;
    for (let di = 0; di < g.nDst; di++) {
      const dst = g.destinations[di];
      const base = di * g.nSrc;
      for (let si = 0; si < dst.srcCount; si++) if (mask[base + si] !== 1) return Math.min(dst.layer, this.model.cfg.nLayers);
    }
    return this.model.cfg.nLayers;
  }

  dispose(): void {
    // nothing held: the row layout is plain numbers
  }
}
