import { CircuitryError } from '../errors.js';
import type { CircuitGraph, Edge, GraphShape } from './graph.js';

/**
 * A circuit: a graph with a score and an in-graph flag per edge. Both arrays are dense and
 * indexed like every per-edge array of CircuitGraph (dst * nSrc + src); positions that are not
 * edges hold NaN and 0. Per-node membership is derived from the edges (`nodeInGraph`), never
 * stored. Values are treated as immutable: every function here returns a new Circuit and leaves
 * its arguments untouched.
 */
export interface Circuit {
  readonly graph: CircuitGraph;
  /** Dense per-edge scores; NaN = no score. */
  readonly scores: Float32Array;
  /** Dense per-edge membership (1 = in the circuit). */
  readonly inGraph: Uint8Array;
  /** Optional node scores in node order (`nodeTable(graph).nodes`); NaN = no score. */
  readonly nodeScores?: Float32Array;
  /** The model's width, written as `cfg.d_model` in circuit files. */
  readonly dModel?: number;
}

export type NodeKind = 'input' | 'head' | 'mlp' | 'logits';

export interface NodeInfo {
  readonly name: string; // input, a0.h1, m0, logits
  readonly kind: NodeKind;
  readonly layer: number; // -1 for input, nLayers for logits
  readonly head: number; // -1 unless a head
  /** Position in node order: sources in their order, then logits. */
  readonly index: number;
}

/** The nodes of a graph: sources in order (input, a0.h0, …, m0, …), then logits. */
export interface NodeTable {
  readonly nodes: readonly NodeInfo[];
  /** Node index of each destination (a head's q, k and v inputs map to the head). */
  readonly dstNode: Int32Array;
  indexOf(name: string): number | undefined;
}

const tables = new WeakMap<CircuitGraph, NodeTable>();

export function nodeTable(graph: CircuitGraph): NodeTable {
  const cached = tables.get(graph);
  if (cached) return cached;
  const nodes: NodeInfo[] = graph.sources.map((s, i) => ({ name: s.name, kind: s.kind, layer: s.layer, head: s.head, index: i }));
  nodes.push({ name: 'logits', kind: 'logits', layer: graph.shape.nLayers, head: -1, index: graph.nSrc });
  const byName = new Map(nodes.map((n) => [n.name, n.index]));
  const dstNode = new Int32Array(graph.nDst);
  graph.destinations.forEach((d, i) => {
    dstNode[i] = byName.get(d.node) ?? -1;
  });
  const table: NodeTable = { nodes, dstNode, indexOf: (name) => byName.get(name) };
  tables.set(graph, table);
  return table;
}

/** "2-layer, 4-head graph", with "(attention-only)" / "(node granularity)" when they apply. */
export function describeShape(shape: GraphShape): string {
  const notes = [shape.hasMlp ? '' : 'attention-only', shape.qkv ? '' : 'node granularity: no <q>/<k>/<v>', shape.parallelAttnMlp ? 'parallel attention + MLP' : ''].filter(Boolean);
  return `${shape.nLayers}-layer, ${shape.nHeads}-head graph${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

export function sameShape(a: GraphShape, b: GraphShape): boolean {
  return a.nLayers === b.nLayers && a.nHeads === b.nHeads && a.hasMlp === b.hasMlp && a.qkv === b.qkv && (a.parallelAttnMlp === true) === (b.parallelAttnMlp === true);
}

/**
 * Closed-form edge count. With q/k/v inputs and MLPs it is DESIGN.md's
 * 3H·Σ_{l<L}(1+l(H+1)) + Σ_{l<L}(1+l(H+1)+H) + 1+L(H+1); without MLPs a layer adds H sources
 * instead of H+1 and has no MLP destination; at node granularity a head is one destination.
 * Parallel blocks (the MLP reads its block's input): (3H+1)·Σ_{l<L}(1+l(H+1)) + 1+L(H+1).
 */
export function edgeCountFormula(shape: GraphShape): number {
  const { nLayers: L, nHeads: H } = shape;
  const m = shape.hasMlp ? 1 : 0;
  const perHead = shape.qkv ? 3 : 1;
  let heads = 0;
  let mlps = 0;
  for (let l = 0; l < L; l++) {
    const before = 1 + l * (H + m); // sources that precede layer l
    heads += perHead * H * before;
    mlps += m * (before + (shape.parallelAttnMlp ? 0 : H));
  }
  return heads + mlps + 1 + L * (H + m);
}

export interface CircuitInit {
  /** Dense scores (graph.denseSize); positions that are not edges are ignored. Default: all NaN. */
  scores?: ArrayLike<number>;
  /** Dense membership (graph.denseSize), non-zero = in the circuit. Default: no edge. */
  inGraph?: ArrayLike<number>;
  /** Node scores in node order (graph.nSrc + 1 values). */
  nodeScores?: ArrayLike<number>;
  dModel?: number;
}

/** A new circuit over `graph`; the arrays given are copied and checked for size. */
export function createCircuit(graph: CircuitGraph, init: CircuitInit = {}): Circuit {
  const size = graph.denseSize;
  const scores = new Float32Array(size).fill(Number.NaN);
  const inGraph = new Uint8Array(size);
  if (init.scores !== undefined && init.scores.length !== size) {
    throw new CircuitryError(`circuit scores: expected ${size} dense values (nDst ${graph.nDst} × nSrc ${graph.nSrc}) for a ${describeShape(graph.shape)}, got ${init.scores.length}`);
  }
  if (init.inGraph !== undefined && init.inGraph.length !== size) {
    throw new CircuitryError(`circuit inGraph: expected ${size} dense values (nDst ${graph.nDst} × nSrc ${graph.nSrc}) for a ${describeShape(graph.shape)}, got ${init.inGraph.length}`);
  }
  for (const e of graph.edges) {
    if (init.scores) scores[e.index] = init.scores[e.index];
    if (init.inGraph) inGraph[e.index] = init.inGraph[e.index] ? 1 : 0;
  }
  let nodeScores: Float32Array | undefined;
  if (init.nodeScores !== undefined) {
    const nNodes = graph.nSrc + 1;
    if (init.nodeScores.length !== nNodes) {
      throw new CircuitryError(`circuit nodeScores: expected ${nNodes} values (one per node, logits last), got ${init.nodeScores.length}`);
    }
    nodeScores = Float32Array.from(init.nodeScores);
  }
  if (init.dModel !== undefined && !(Number.isInteger(init.dModel) && init.dModel > 0)) {
    throw new CircuitryError(`circuit dModel: expected a positive integer, got ${init.dModel}`);
  }
  return { graph, scores, inGraph, ...(nodeScores ? { nodeScores } : {}), ...(init.dModel !== undefined ? { dModel: init.dModel } : {}) };
}

/** A circuit whose scores are given by edge name (null / missing = no score). */
export function circuitFromEdgeScores(
  graph: CircuitGraph,
  scores: ReadonlyMap<string, number | null> | Readonly<Record<string, number | null>>,
  init: Omit<CircuitInit, 'scores'> = {},
): Circuit {
  const dense = new Float32Array(graph.denseSize).fill(Number.NaN);
  const entries = scores instanceof Map ? [...scores.entries()] : Object.entries(scores);
  for (const [name, value] of entries) {
    const e = graph.edge(name);
    dense[e.index] = value ?? Number.NaN;
  }
  return createCircuit(graph, { ...init, scores: dense });
}

/** Same scores, new membership (dense, graph.denseSize). */
export function withInGraph(circuit: Circuit, inGraph: ArrayLike<number>): Circuit {
  return createCircuit(circuit.graph, { ...carried(circuit), scores: circuit.scores, inGraph });
}

/** Same membership, new dense scores. */
export function withScores(circuit: Circuit, scores: ArrayLike<number>): Circuit {
  return createCircuit(circuit.graph, { ...carried(circuit), scores, inGraph: circuit.inGraph });
}

/** The circuit with exactly the named edges in the graph. */
export function withEdges(circuit: Circuit, names: Iterable<string>): Circuit {
  const mask = new Uint8Array(circuit.graph.denseSize);
  for (const name of names) mask[circuit.graph.edge(name).index] = 1;
  return withInGraph(circuit, mask);
}

/** Every edge in the graph (the full model). */
export function fullCircuit(circuit: Circuit): Circuit {
  return withInGraph(circuit, circuit.graph.denseEdgeArray(1));
}

/** No edge in the graph. */
export function emptyCircuit(circuit: Circuit): Circuit {
  return withInGraph(circuit, new Uint8Array(circuit.graph.denseSize));
}

export function edgeScore(circuit: Circuit, name: string): number {
  return circuit.scores[circuit.graph.edge(name).index];
}

export function edgeInGraph(circuit: Circuit, name: string): boolean {
  return circuit.inGraph[circuit.graph.edge(name).index] === 1;
}

/** In-graph edges in canonical order. */
export function inGraphEdges(circuit: Circuit): Edge[] {
  return circuit.graph.edges.filter((e) => circuit.inGraph[e.index] === 1);
}

export function countInGraph(circuit: Circuit): number {
  let n = 0;
  for (const e of circuit.graph.edges) n += circuit.inGraph[e.index];
  return n;
}

/**
 * Node membership in node order: a node is in the graph when an in-graph edge leaves it or
 * enters one of its inputs; input and logits are present as soon as any edge is.
 */
export function nodeInGraph(circuit: Circuit): Uint8Array {
  const { graph } = circuit;
  const table = nodeTable(graph);
  const out = new Uint8Array(table.nodes.length);
  let any = false;
  for (const e of graph.edges) {
    if (circuit.inGraph[e.index] !== 1) continue;
    any = true;
    out[e.src] = 1;
    out[table.dstNode[e.dst]] = 1;
  }
  if (any) {
    out[0] = 1;
    out[graph.nSrc] = 1;
  }
  return out;
}

/** Names of the in-graph nodes in node order. */
export function inGraphNodes(circuit: Circuit): string[] {
  const flags = nodeInGraph(circuit);
  return nodeTable(circuit.graph).nodes.filter((n) => flags[n.index] === 1).map((n) => n.name);
}

/** Score of a node (NaN when the circuit has no node scores or this node has none). */
export function nodeScore(circuit: Circuit, name: string): number {
  const i = nodeTable(circuit.graph).indexOf(name);
  if (i === undefined) throw new CircuitryError(`unknown node '${name}' for a ${describeShape(circuit.graph.shape)}`);
  return circuit.nodeScores ? circuit.nodeScores[i] : Number.NaN;
}

/** Throws unless the two circuits live on graphs of the same shape. */
export function assertSameShape(a: Circuit, b: Circuit, what: string): void {
  if (!sameShape(a.graph.shape, b.graph.shape)) {
    throw new CircuitryError(`${what}: circuits on different graphs (a ${describeShape(a.graph.shape)} and a ${describeShape(b.graph.shape)})`);
  }
}

/** The fields a derived circuit keeps from the one it came from. */
export function carried(circuit: Circuit): Pick<CircuitInit, 'nodeScores' | 'dModel'> {
  return {
    ...(circuit.nodeScores ? { nodeScores: circuit.nodeScores } : {}),
    ...(circuit.dModel !== undefined ? { dModel: circuit.dModel } : {}),
  };
}
