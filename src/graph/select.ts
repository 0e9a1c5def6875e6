import { CircuitryError } from '../errors.js';
import { assertSameShape, inGraphNodes, nodeTable, withInGraph } from './circuit.js';
import type { Circuit } from './circuit.js';

/**
 * Turning scores into a circuit, as EAP-IG users do: top-n, threshold, greedy from the logits;
 * then pruning what is not connected. Edges without a score (NaN) are never selected. Ties are
 * broken by canonical edge order (the earlier edge wins), so results are deterministic.
 */

export interface SelectOptions {
  /** Rank by |score| (default) or by the signed score. */
  absolute?: boolean;
  /** Drop edges not on an input → logits path afterwards (default false). */
  prune?: boolean;
}

function key(score: number, absolute: boolean): number {
  return absolute ? Math.abs(score) : score;
}

function checkCount(circuit: Circuit, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new CircuitryError(`${what}: n must be a non-negative integer, got ${n}`);
  if (n > circuit.graph.nEdges) throw new CircuitryError(`${what}: n = ${n} is more than the ${circuit.graph.nEdges} edges of the graph`);
}

function finish(circuit: Circuit, mask: Uint8Array, prune: boolean | undefined): Circuit {
  const selected = withInGraph(circuit, mask);
  return prune ? pruneDisconnected(selected) : selected;
}

/** The n edges with the highest (absolute) score; all other edges out. */
export function topN(circuit: Circuit, n: number, options: SelectOptions = {}): Circuit {
  checkCount(circuit, n, 'topN');
  const absolute = options.absolute ?? true;
  const scored: number[] = []; // dense indices, in canonical order
  const keys = new Float64Array(circuit.graph.denseSize);
  for (const e of circuit.graph.edges) {
    const s = circuit.scores[e.index];
    if (Number.isNaN(s)) continue;
    scored.push(e.index);
    keys[e.index] = key(s, absolute);
  }
  if (n > scored.length) throw new CircuitryError(`topN: n = ${n} but only ${scored.length} edges have a score`);
  // Array.prototype.sort is stable: equal keys keep canonical order.
  scored.sort((a, b) => keys[b] - keys[a]);
  const mask = new Uint8Array(circuit.graph.denseSize);
  for (let i = 0; i < n; i++) mask[scored[i]] = 1;
  return finish(circuit, mask, options.prune);
}

/** Every edge whose (absolute) score is at least t. */
export function threshold(circuit: Circuit, t: number, options: SelectOptions = {}): Circuit {
  if (Number.isNaN(t)) throw new CircuitryError('threshold: t must be a number, got NaN');
  const absolute = options.absolute ?? true;
  const mask = new Uint8Array(circuit.graph.denseSize);
  for (const e of circuit.graph.edges) {
    const s = circuit.scores[e.index];
    if (!Number.isNaN(s) && key(s, absolute) >= t) mask[e.index] = 1;
  }
  return finish(circuit, mask, options.prune);
}

/**
 * EAP-IG's greedy selection: start from the logits; repeatedly add the highest-scoring edge whose
 * destination node is already in the circuit; when an edge brings in a new source node, that
 * node's incoming edges (all of q, k and v for a head) become candidates.
 */
export function greedy(circuit: Circuit, n: number, options: SelectOptions = {}): Circuit {
  checkCount(circuit, n, 'greedy');
  const absolute = options.absolute ?? true;
  const { graph } = circuit;
  const table = nodeTable(graph);
  // destinations of each node (a head has three with q/k/v)
  const dstsOf: number[][] = table.nodes.map(() => []);
  graph.destinations.forEach((_, di) => dstsOf[table.dstNode[di]].push(di));
  const heap = new EdgeHeap();
  const addCandidates = (node: number) => {
    for (const di of dstsOf[node]) {
      const d = graph.destinations[di];
      for (let si = 0; si < d.srcCount; si++) {
        const index = di * graph.nSrc + si;
        const s = circuit.scores[index];
        if (!Number.isNaN(s)) heap.push(key(s, absolute), index, si);
      }
    }
  };
  const reached = new Uint8Array(table.nodes.length);
  reached[graph.nSrc] = 1; // logits
  addCandidates(graph.nSrc);
  const mask = new Uint8Array(graph.denseSize);
  for (let taken = 0; taken < n; taken++) {
    const top = heap.pop();
    if (!top) throw new CircuitryError(`greedy: n = ${n} but only ${taken} scored edges can be reached from the logits`);
    mask[top.index] = 1;
    if (!reached[top.src]) {
      reached[top.src] = 1;
      addCandidates(top.src);
    }
  }
  return finish(circuit, mask, options.prune);
}

/**
 * Keeps only in-graph edges on some path input → … → logits through in-graph edges. A head is
 * reached when any of its q/k/v inputs has an in-graph edge from a reached node.
 */
export function pruneDisconnected(circuit: Circuit): Circuit {
  const { graph } = circuit;
  const { dstNode, nodes } = nodeTable(graph);
  const inG = circuit.inGraph;
  // Forward: destinations in canonical order are topological (a node's inputs come before its output is read).
  const fromInput = new Uint8Array(nodes.length);
  fromInput[0] = 1;
  graph.destinations.forEach((d, di) => {
    const node = dstNode[di];
    if (fromInput[node]) return;
    for (let si = 0; si < d.srcCount; si++) {
      if (inG[di * graph.nSrc + si] && fromInput[si]) {
        fromInput[node] = 1;
        break;
      }
    }
  });
  // Backward: in reverse order, a source reaches the logits if it feeds a node that does.
  const toLogits = new Uint8Array(nodes.length);
  toLogits[graph.nSrc] = 1;
  for (let di = graph.nDst - 1; di >= 0; di--) {
    if (!toLogits[dstNode[di]]) continue;
    const d = graph.destinations[di];
    for (let si = 0; si < d.srcCount; si++) if (inG[di * graph.nSrc + si]) toLogits[si] = 1;
  }
  const mask = new Uint8Array(graph.denseSize);
  for (const e of graph.edges) {
    if (inG[e.index] && fromInput[e.src] && toLogits[dstNode[e.dst]]) mask[e.index] = 1;
  }
  return withInGraph(circuit, mask);
}

/** |A ∩ B| / |A ∪ B| of two sets of names; 1 when both are empty. */
export function setIoU(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  const union = a.size + b.size - inter;
  return union === 0 ? 1 : inter / union;
}

/** Intersection over union of the in-graph edges of two circuits on the same graph (1 when both are empty). */
export function edgeSetIoU(a: Circuit, b: Circuit): number {
  assertSameShape(a, b, 'edgeSetIoU');
  let inter = 0;
  let union = 0;
  for (const e of a.graph.edges) {
    const x = a.inGraph[e.index];
    const y = b.inGraph[e.index];
    inter += x & y;
    union += x | y;
  }
  return union === 0 ? 1 : inter / union;
}

/**
 * Intersection over union of the in-graph nodes (input and logits included). Nodes are named the
 * same at edge and node granularity, so the two circuits only need the same layers and heads.
 */
export function nodeSetIoU(a: Circuit, b: Circuit): number {
  const sa = a.graph.shape;
  const sb = b.graph.shape;
  if (sa.nLayers !== sb.nLayers || sa.nHeads !== sb.nHeads) {
    throw new CircuitryError(`nodeSetIoU: circuits of different models (${sa.nLayers} layers × ${sa.nHeads} heads and ${sb.nLayers} × ${sb.nHeads})`);
  }
  return setIoU(new Set(inGraphNodes(a)), new Set(inGraphNodes(b)));
}

/** A max-heap of edges by key; ties go to the lower dense index, which is canonical edge order. */
class EdgeHeap {
  private keys: number[] = [];
  private idx: number[] = [];
  private srcs: number[] = [];

  push(k: number, index: number, src: number): void {
    this.keys.push(k);
    this.idx.push(index);
    this.srcs.push(src);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): { index: number; src: number } | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const top = { index: this.idx[0], src: this.srcs[0] };
    this.swap(0, n - 1);
    this.keys.pop();
    this.idx.pop();
    this.srcs.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < this.keys.length && this.before(l, best)) best = l;
      if (r < this.keys.length && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.keys[i] > this.keys[j] || (this.keys[i] === this.keys[j] && this.idx[i] < this.idx[j]);
  }

  private swap(i: number, j: number): void {
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
    [this.idx[i], this.idx[j]] = [this.idx[j], this.idx[i]];
    [this.srcs[i], this.srcs[j]] = [this.srcs[j], this.srcs[i]];
  }
}
