import { CircuitryError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';

/**
 * The computational graph of DESIGN.md as index arithmetic. Sources are the nodes that write
 * to the residual stream; destinations are the inputs that read it. Everything is dense: an
 * edge is (dst, src) with src < srcCount(dst), stored at dst * nSrc + src in any per-edge array.
 *
 * Sources:      input, a0.h0 … a0.h{H-1}, m0, a1.h0, …, m{L-1}        (no m{l} when attention-only)
 * Destinations: a0.h0<q>, a0.h0<k>, a0.h0<v>, a0.h1<q>, …, m0, a1.h0<q>, …, logits
 *               (with qkv: false a head is one destination `a{l}.h{h}`)
 * Canonical edge order: destinations in the order above, each with its sources from the earliest.
 * A parallel block's m{l} reads the sources before a{l}.h0 only (its srcCount stops there).
 */
export interface GraphShape {
  readonly nLayers: number;
  readonly nHeads: number;
  readonly hasMlp: boolean;
  /** Split a head's input into q, k and v edges (default) or treat the head as one input. */
  readonly qkv: boolean;
  /**
   * Attention and MLP read the same block input (GPT-NeoX's use_parallel_residual): no edge
   * a{l}.* -> m{l}. Default false. Grouped-query attention changes nothing here: EAP-IG ungroups
   * it, so every query head has its own q, k and v inputs and the graph depends on n_heads only.
   */
  readonly parallelAttnMlp?: boolean;
}

export type DestinationKind = 'q' | 'k' | 'v' | 'head' | 'mlp' | 'logits';

export interface Destination {
  readonly name: string; // a1.h2<q>, a1.h2 (qkv: false), m1, logits
  readonly node: string; // a1.h2, m1, logits
  readonly kind: DestinationKind;
  readonly layer: number; // nLayers for logits
  readonly head: number; // -1 unless a head input
  /** Sources with index below this precede the destination. */
  readonly srcCount: number;
}

export interface Source {
  readonly name: string; // input, a0.h1, m0
  readonly kind: 'input' | 'head' | 'mlp';
  readonly layer: number; // -1 for input
  readonly head: number; // -1 unless a head
}

export interface Edge {
  readonly name: string;
  readonly src: number;
  readonly dst: number;
  /** dst * nSrc + src: the position of this edge in dense per-edge arrays. */
  readonly index: number;
}

export class CircuitGraph {
  readonly shape: GraphShape;
  readonly sources: readonly Source[];
  readonly destinations: readonly Destination[];
  /** Edges in canonical order. */
  readonly edges: readonly Edge[];
  readonly nSrc: number;
  readonly nDst: number;
  private readonly srcIndex = new Map<string, number>();
  private readonly dstIndex = new Map<string, number>();
  private readonly edgeByName = new Map<string, Edge>();

  constructor(shape: GraphShape) {
    if (!Number.isInteger(shape.nLayers) || shape.nLayers < 1 || !Number.isInteger(shape.nHeads) || shape.nHeads < 1) {
      throw new CircuitryError(`graph shape needs positive integer nLayers and nHeads, got ${shape.nLayers} and ${shape.nHeads}`);
    }
    const parallel = shape.parallelAttnMlp === true;
    // the key only when true, so sequential shapes look as they always did
    const { parallelAttnMlp: _, ...rest } = shape;
    this.shape = parallel ? { ...rest, parallelAttnMlp: true } : rest;
    const { nLayers: L, nHeads: H, hasMlp, qkv } = shape;
    if (parallel && !hasMlp) throw new CircuitryError('graph shape: a parallel attention + MLP block needs MLPs (hasMlp: true)');
    const sources: Source[] = [{ name: 'input', kind: 'input', layer: -1, head: -1 }];
    const dests: Destination[] = [];
    for (let l = 0; l < L; l++) {
      const before = sources.length;
      for (let h = 0; h < H; h++) {
        if (qkv) {
          for (const k of ['q', 'k', 'v'] as const) {
            dests.push({ name: `a${l}.h${h}<${k}>`, node: `a${l}.h${h}`, kind: k, layer: l, head: h, srcCount: before });
          }
        } else {
          dests.push({ name: `a${l}.h${h}`, node: `a${l}.h${h}`, kind: 'head', layer: l, head: h, srcCount: before });
        }
      }
      for (let h = 0; h < H; h++) sources.push({ name: `a${l}.h${h}`, kind: 'head', layer: l, head: h });
      if (hasMlp) {
        dests.push({ name: `m${l}`, node: `m${l}`, kind: 'mlp', layer: l, head: -1, srcCount: parallel ? before : sources.length });
        sources.push({ name: `m${l}`, kind: 'mlp', layer: l, head: -1 });
      }
    }
    dests.push({ name: 'logits', node: 'logits', kind: 'logits', layer: L, head: -1, srcCount: sources.length });
    this.sources = sources;
    this.destinations = dests;
    this.nSrc = sources.length;
    this.nDst = dests.length;
    sources.forEach((s, i) => this.srcIndex.set(s.name, i));
    dests.forEach((d, i) => this.dstIndex.set(d.name, i));
    const edges: Edge[] = [];
    dests.forEach((d, di) => {
      for (let si = 0; si < d.srcCount; si++) {
        const e = { name: `${sources[si].name}->${d.name}`, src: si, dst: di, index: di * this.nSrc + si };
        edges.push(e);
        this.edgeByName.set(e.name, e);
      }
    });
    this.edges = edges;
  }

  get nEdges(): number {
    return this.edges.length;
  }

  /** Size of dense per-edge arrays (nDst * nSrc; entries with src >= srcCount(dst) are unused). */
  get denseSize(): number {
    return this.nDst * this.nSrc;
  }

  /** Node names in topological order: input, a0.h0, …, m0, …, logits. */
  get nodes(): string[] {
    return [...this.sources.map((s) => s.name), 'logits'];
  }

  sourceIndex(name: string): number {
    const i = this.srcIndex.get(name);
    if (i === undefined) throw new CircuitryError(`unknown source node '${name}' (expected input, a{l}.h{h} or m{l} within ${this.shape.nLayers} layers and ${this.shape.nHeads} heads)`);
    return i;
  }

  destinationIndex(name: string): number {
    const i = this.dstIndex.get(name);
    if (i === undefined) throw new CircuitryError(`unknown destination '${name}' in this graph`);
    return i;
  }

  /** Whether the graph's blocks are parallel (attention and MLP read the same block input). */
  get parallel(): boolean {
    return this.shape.parallelAttnMlp === true;
  }

  private unusedDestinationIndex(name: string): number {
    const i = this.dstIndex.get(name);
    if (i === undefined) throw new Error(name);
    return i;
  }

  hasEdge(name: string): boolean {
    return this.edgeByName.has(name);
  }

  edge(name: string): Edge {
    const e = this.edgeByName.get(name);
    if (!e) throw new CircuitryError(`unknown edge '${name}' for a graph of ${this.shape.nLayers} layers, ${this.shape.nHeads} heads${this.shape.qkv ? '' : ' (node granularity: no <q>/<k>/<v>)'}`);
    return e;
  }

  /** A dense per-edge Float32Array filled with `value` on valid edges and 0 elsewhere. */
  denseEdgeArray(value = 1): Float32Array {
    const a = new Float32Array(this.denseSize);
    for (const e of this.edges) a[e.index] = value;
    return a;
  }

  /**
   * Number of edges for a model of L layers and H heads (DESIGN.md's formula when qkv and MLPs;
   * parallel blocks: (3H + 1)·Σ_{l<L}(1 + l(H+1)) + 1 + L(H+1), L·H fewer).
   */
  static edgeCount(shape: GraphShape): number {
    return new CircuitGraph(shape).nEdges;
  }
}

/** The graph shape of a model (q/k/v edges unless `qkv: false`). */
export function graphShapeFor(cfg: Pick<ModelConfig, 'nLayers' | 'nHeads' | 'attnOnly' | 'parallelAttnMlp'>, qkv = true): GraphShape {
  return { nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: !cfg.attnOnly, qkv, ...(cfg.parallelAttnMlp ? { parallelAttnMlp: true } : {}) };
}

/** The computational graph of a model (DESIGN.md), q/k/v edges unless `qkv: false`. */
export function graphForModel(cfg: Pick<ModelConfig, 'nLayers' | 'nHeads' | 'attnOnly' | 'parallelAttnMlp'>, qkv = true): CircuitGraph {
  return new CircuitGraph(graphShapeFor(cfg, qkv));
}
