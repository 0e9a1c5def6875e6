import * as tf from '@tensorflow/tfjs';
import type { HookFn, HookName } from '../model/hooks.js';
import { bmm } from '../model/ops.js';
import type { CircuitGraph } from '../graph/graph.js';
import type { GraphBinding } from './binding.js';
import { addDelta, stackCopies } from './stacked.js';
import { atEveryPosition } from '../model/transformer.js';

/**
 * The masked forward for masks that patch few edges (single-edge sweeps, path patching, the
 * pipeline's verification). Same equation as the dense pass,
 *   x_d = resid(current) + Σ_u (1 − m_ud) · (patch_u − current_u),
 * but the sum runs over the patched entries only, so the pass pays for them alone: q/k/v inputs
 * are split only at layers with a patched head input, per-head outputs are taken only where a
 * patched edge starts at or above the first patched layer, and every other layer runs the plain
 * fused forward. With last-position logits (`lastQueryOnly`) the last block works at the last
 * query only: its sources' differences are taken there, and its destinations read their deltas
 * there (every other position of them reaches nothing the logits read).
 */

/** One patched mask entry: copy k, destination row, source, coefficient 1 − m. */
interface Entry {
  k: number;
  dst: number;
  src: number;
  coef: number;
}

/** The patched entries of K host masks, or undefined when they use more than `maxSources` sources. */
export function patchedEntries(graph: CircuitGraph, masks: readonly Float32Array[], maxSources: number): Entry[] | undefined {
  const entries: Entry[] = [];
  const sources = new Set<number>();
  for (let k = 0; k < masks.length; k++) {
    const m = masks[k];
    for (let di = 0; di < graph.nDst; di++) {
      const base = di * graph.nSrc;
      const n = graph.destinations[di].srcCount;
      for (let si = 0; si < n; si++) {
        const v = m[base + si];
        if (v === 1) continue;
        sources.add(si);
        if (sources.size > maxSources) return undefined;
        entries.push({ k, dst: di, src: si, coef: 1 - v });
      }
    }
  }
  return entries;
}

export interface SparseArgs {
  /** The graph's hooks; no patched source may sit inside a post-attention norm (the engine checks). */
  readonly binding: GraphBinding;
  readonly tokens: tf.Tensor2D; // [B, p]
  readonly sources: tf.Tensor; // [nSrc, B, p, d] of the run
  readonly residPre: readonly tf.Tensor[];
  readonly patch: tf.Tensor; // [nSrc, B, p, d]
  readonly entries: readonly Entry[];
  readonly K: number;
  readonly start: number;
  readonly dims: { L: number; H: number; d: number };
  /** The model's forward from layer `start`; with `lastQueryOnly`, the last block at the last query only. */
  readonly forward: (tokens: tf.Tensor2D, hooks: Map<HookName, HookFn>, start: number, residual: tf.Tensor | undefined) => tf.Tensor;
  /** The model's q/k/v of heads[t] from residual x[t]: [T, n, d] → [T, n, d_head]. */
  readonly project: (l: number, which: 'q' | 'k' | 'v', heads: readonly number[], x: tf.Tensor) => tf.Tensor;
}

/** Logits of K stacked copies, copy k patching its entries. Call inside tf.tidy. */
export function sparseMaskedForward(a: SparseArgs): tf.Tensor {
  const { binding, entries, K, start } = a;
  const graph = binding.graph;
  const { L, H, d } = a.dims;
  const [B, p] = a.tokens.shape;
  const bpd = B * p * d;
  const qkv = graph.shape.qkv;
  const G = qkv ? 3 : 1;
  const column = (t: tf.Tensor, u: number) => tf.reshape(tf.slice(t, [u, 0, 0, 0], [1, B, p, d]), [1, bpd, 1]);

  // patch_u − current_u per used source: constant when u is below the first patched layer
  // (nothing upstream of it changes), else read live from this pass
  const diff = new Map<number, tf.Tensor>(); // [1 | K, B·p·d, 1]
  const live = new Map<HookName, number[]>(); // hook -> live sources it produces
  for (const u of new Set(entries.map((e) => e.src))) {
    const s = graph.sources[u];
    if (s.layer < start) {
      diff.set(u, tf.sub(column(a.patch, u), column(a.sources, u)));
    } else {
      const { hook } = binding.sourceHook(u);
      live.set(hook, [...(live.get(hook) ?? []), u]);
    }
  }
  const hooks = new Map<HookName, HookFn>();
  for (const [hook, us] of live) {
    hooks.set(hook, (act) => {
      for (const u of us) {
        const s = graph.sources[u];
        // a trimmed last block's sources: right at the last position, where alone they are read
        const full = atEveryPosition(act, p);
        const current = s.kind === 'head' ? tf.slice(full, [0, 0, s.head, 0], [K * B, p, 1, d]) : full;
        diff.set(u, tf.keep(tf.sub(column(a.patch, u), tf.reshape(current, [K, bpd, 1]))));
      }
    });
  }

  // Σ_e coef_e · diff_e into columns, [B·p·d, C]; each column belongs to one copy, and entry e
  // adds to column col(e). Constant differences are shared by the copies: one product
  // [B·p·d, n] @ [n, C]. Live ones differ per copy: a product per copy, summed.
  const columnSums = (group: readonly Entry[], C: number, col: (e: Entry) => number) => {
    const parts: tf.Tensor[] = [];
    for (const isLive of [false, true]) {
      const mine = group.filter((e) => (diff.get(e.src)!.shape[0] > 1) === isLive);
      if (mine.length === 0) continue;
      const used = [...new Set(mine.map((e) => e.src))].sort((x, y) => x - y);
      const n = used.length;
      const diffs = n === 1 ? diff.get(used[0])! : tf.concat(used.map((u) => diff.get(u)!), 2); // [1 | K, B·p·d, n]
      const coef = new Float32Array((isLive ? K : 1) * n * C);
      for (const e of mine) coef[((isLive ? e.k * n : 0) + used.indexOf(e.src)) * C + col(e)] += e.coef;
      parts.push(isLive ? tf.sum(bmm(diffs, tf.tensor3d(coef, [K, n, C])), 0) : bmm(tf.reshape(diffs, [bpd, n]), tf.tensor2d(coef, [n, C])));
    }
    return parts.length === 1 ? parts[0] : tf.add(parts[0], parts[1]);
  };
  // a destination group's delta, rows [row, row + R) of every copy → [K, B·p, R, d]
  const groupDelta = (row: number, R: number, group: readonly Entry[]) =>
    tf.transpose(tf.reshape(columnSums(group, K * R, (e) => e.k * R + (e.dst - row)), [B * p, d, K, R]), [2, 0, 3, 1]);
  // A layer whose patched head inputs are few keeps its fused q/k/v projection: the patched
  // inputs (copy k, head input row) are recomputed on their own, LN1(resid_k + delta) · W_h,
  // and written over those heads' q, k or v.
  const projectHeadInputs = (l: number, heads: readonly Entry[]) => {
    const cols = [...new Map(heads.map((e) => [`${e.k},${e.dst}`, { k: e.k, dst: e.dst }])).values()];
    const T = cols.length;
    const colOf = new Map(cols.map((c, t) => [`${c.k},${c.dst}`, t]));
    let resid: tf.Tensor | undefined; // [K·B, p, d] entering layer l
    let inputs: tf.Tensor | undefined; // [T, B·p, d]: the patched residual each column reads
    const columnInputs = () => {
      const delta = tf.transpose(columnSums(heads, T, (e) => colOf.get(`${e.k},${e.dst}`)!)); // [T, B·p·d]
      const base = tf.gather(tf.reshape(resid!, [K, bpd]), tf.tensor1d(cols.map((c) => c.k), 'int32'));
      return tf.reshape(tf.add(base, delta), [T, B * p, d]);
    };
    hooks.set(binding.residPre(l), (act) => {
      resid = act;
    });
    for (const which of ['q', 'k', 'v'] as const) {
      const mine = cols.map((c, t) => ({ ...c, t, dst: graph.destinations[c.dst] })).filter((c) => !qkv || c.dst.kind === which);
      if (mine.length === 0) continue;
      // the projection before any rotation (TransformerLens' hook_q/k/v come before hook_rot_q/k)
      hooks.set(binding.headProjection(l, which), (act) => {
        inputs ??= columnInputs();
        const dh = act.shape[3]!;
        const pq = act.shape[1]!; // p, or 1 for a trimmed last block's queries
        const all = mine.length === T ? inputs : tf.gather(inputs, tf.tensor1d(mine.map((c) => c.t), 'int32'));
        const x = pq === p ? all : tf.reshape(tf.slice(tf.reshape(all, [mine.length, B, p, d]), [0, 0, p - 1, 0], [mine.length, B, 1, d]), [mine.length, B, d]);
        const projected = tf.reshape(project(l, which, mine.map((c) => c.dst.head), x), [mine.length, B * pq * dh]);
        // heads as rows: [K·H, B·pq·dh], row k·H + h
        const rows = tf.reshape(tf.transpose(tf.reshape(act, [K, B * pq, H, dh]), [0, 2, 1, 3]), [K * H, B * pq * dh]);
        const at = mine.map((c) => c.k * H + c.dst.head);
        const change = tf.sub(projected, tf.gather(rows, tf.tensor1d(at, 'int32')));
        const place = new Float32Array(K * H * mine.length);
        at.forEach((r, j) => (place[r * mine.length + j] = 1));
        const out = tf.add(rows, bmm(tf.tensor2d(place, [K * H, mine.length]), change));
        return tf.reshape(tf.transpose(tf.reshape(out, [K, H, B * pq, dh]), [0, 2, 1, 3]), [K * B, pq, H, dh]);
      });
    }
  };
  const project = a.project;
  const byGroup = new Map<string, Entry[]>();
  const groupOf = (di: number) => {
    const dst = graph.destinations[di];
    return dst.kind === 'mlp' || dst.kind === 'logits' ? dst.name : `a${dst.layer}`;
  };
  for (const e of entries) {
    const key = groupOf(e.dst);
    byGroup.set(key, [...(byGroup.get(key) ?? []), e]);
  }
  for (let l = start; l < L; l++) {
    const heads = byGroup.get(`a${l}`);
    if (heads && new Set(heads.map((e) => `${e.k},${e.dst}`)).size <= K * H) {
      projectHeadInputs(l, heads);
    } else if (heads) {
      const row = binding.layers[l].heads;
      let headDelta: tf.Tensor | undefined; // [G, K·B, p, H, d]
      const headInput = (which: number) => (act: tf.Tensor) => {
        // [K, B·p, H·G, d] → [G, K·B·p, H, d] (rank ≤ 4: rank-5 transposes are slow on wasm)
        headDelta ??= tf.reshape(tf.transpose(tf.reshape(groupDelta(row, G * H, heads), [K * B * p, H, G, d]), [2, 0, 1, 3]), [G, K * B, p, H, d]);
        return tf.add(act, tf.reshape(tf.slice(headDelta, [which, 0, 0, 0, 0], [1, K * B, p, H, d]), [K * B, p, H, d]));
      };
      hooks.set(binding.headInput(l, 'q'), headInput(0));
      hooks.set(binding.headInput(l, 'k'), headInput(qkv ? 1 : 0));
      hooks.set(binding.headInput(l, 'v'), headInput(qkv ? 2 : 0));
    }
    const mlp = byGroup.get(`m${l}`);
    if (mlp) {
      const row = binding.layers[l].mlp;
      hooks.set(binding.mlpInput(l), (act) => addDelta(act, tf.reshape(groupDelta(row, 1, mlp), [K * B, p, d])));
    }
  }
  const logits = byGroup.get('logits');
  if (logits) {
    const row = binding.logitsRow;
    hooks.set(binding.logitsInput, (act) => addDelta(act, tf.reshape(groupDelta(row, 1, logits), [K * B, p, d])));
  }
  const tokens = K === 1 ? a.tokens : (tf.tile(a.tokens, [K, 1]) as tf.Tensor2D);
  const residual = start > 0 ? stackCopies(a.residPre[start], K) : undefined;
  try {
    return a.forward(tokens, hooks, start, residual);
  } finally {
    for (const [u, t] of diff) if (graph.sources[u].layer >= start) t.dispose();
  }
}
