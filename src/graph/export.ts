import { DirectedGraph, MultiDirectedGraph } from 'graphology';
import { nodeInGraph, nodeTable } from './circuit.js';
import type { Circuit, NodeInfo, NodeKind } from './circuit.js';
import type { DestinationKind, Edge } from './graph.js';

/**
 * Circuits as other tools read them: Graphviz DOT, GraphML, and a graphology graph (what the
 * HTML report draws with sigma). Node ids are node names; edges carry their names.
 */

export interface ExportOptions {
  /** Which edges to write: only the circuit's (default for DOT) or every edge of the graph. */
  edges?: 'in-graph' | 'all';
}

export interface DotOptions extends ExportOptions {
  /** Graph label drawn on top. */
  title?: string;
  /** Write each edge's score as its label (default true). */
  labels?: boolean;
  rankdir?: 'TB' | 'BT' | 'LR' | 'RL';
}

const POSITIVE = '#2166ac';
const NEGATIVE = '#b2182b';
const UNSCORED = '#999999';
/** Edges outside the circuit (written only with edges: 'all'). */
const OUTSIDE = '#dddddd';
const FILL: Record<NodeKind, string> = { input: '#d9d9d9', head: '#c6dbef', mlp: '#fdd0a2', logits: '#d9d9d9' };
/** How an edge into a head shows which input it feeds. */
const QKV_STYLE: Partial<Record<DestinationKind, string>> = { q: 'dashed', k: 'dotted', v: 'solid' };

function selectedEdges(circuit: Circuit, which: 'in-graph' | 'all'): Edge[] {
  return which === 'all' ? [...circuit.graph.edges] : circuit.graph.edges.filter((e) => circuit.inGraph[e.index] === 1);
}

/** Nodes drawn: all of them, or those touched by an in-graph edge. */
function selectedNodes(circuit: Circuit, which: 'in-graph' | 'all'): NodeInfo[] {
  const { nodes } = nodeTable(circuit.graph);
  if (which === 'all') return [...nodes];
  const flags = nodeInGraph(circuit);
  return nodes.filter((n) => flags[n.index] === 1);
}

function formatScore(s: number): string {
  return Number.isFinite(s) ? Number(s.toPrecision(3)).toString() : '';
}

/** A DOT double-quoted string. */
export function dotString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

/**
 * Graphviz DOT. Edge width grows with |score| (relative to the largest drawn), colour gives the
 * sign (blue positive, red negative, grey unscored), and an edge into a head is dashed (q),
 * dotted (k) or solid (v) with the letter in its label. Each edge's `id` is its name.
 */
export function toDot(circuit: Circuit, options: DotOptions = {}): string {
  const which = options.edges ?? 'in-graph';
  const labels = options.labels ?? true;
  const { graph } = circuit;
  const edges = selectedEdges(circuit, which);
  const nodes = selectedNodes(circuit, which);
  let maxAbs = 0;
  for (const e of edges) {
    const s = Math.abs(circuit.scores[e.index]);
    if (Number.isFinite(s) && s > maxAbs) maxAbs = s;
  }
  const lines: string[] = [];
  lines.push(`digraph ${dotString(options.title ?? 'circuit')} {`);
  lines.push(`  // ${edges.length} edges; q dashed, k dotted, v solid; blue positive, red negative, grey unscored, light grey outside the circuit`);
  const graphAttrs = [`rankdir=${options.rankdir ?? 'TB'}`, 'fontname="Helvetica"'];
  if (options.title !== undefined) graphAttrs.push(`label=${dotString(options.title)}`, 'labelloc=t');
  lines.push(`  graph [${graphAttrs.join(', ')}];`);
  lines.push('  node [shape=box, style="filled,rounded", fontname="Helvetica"];');
  lines.push('  edge [arrowsize=0.6, fontname="Helvetica", fontsize=9];');
  const scores = circuit.nodeScores;
  for (const n of nodes) {
    const attrs = [`fillcolor=${dotString(FILL[n.kind])}`];
    const s = scores?.[n.index];
    attrs.push(`tooltip=${dotString(s !== undefined && Number.isFinite(s) ? `${n.name} (score ${formatScore(s)})` : n.name)}`);
    lines.push(`  ${dotString(n.name)} [${attrs.join(', ')}];`);
  }
  // heads of one layer side by side
  for (let l = 0; l < graph.shape.nLayers; l++) {
    const heads = nodes.filter((n) => n.kind === 'head' && n.layer === l);
    if (heads.length > 1) lines.push(`  { rank=same; ${heads.map((n) => dotString(n.name)).join('; ')}; }`);
  }
  for (const e of edges) {
    const d = graph.destinations[e.dst];
    const s = circuit.scores[e.index];
    const finite = Number.isFinite(s);
    const width = finite && maxAbs > 0 ? 0.5 + (4.5 * Math.abs(s)) / maxAbs : 1;
    const letter = QKV_STYLE[d.kind] ? d.kind : '';
    const label = [letter, labels ? formatScore(s) : ''].filter(Boolean).join(' ');
    const inG = circuit.inGraph[e.index] === 1;
    const attrs = [
      `id=${dotString(e.name)}`,
      `color=${dotString(!inG ? OUTSIDE : !finite ? UNSCORED : s < 0 ? NEGATIVE : POSITIVE)}`,
      `penwidth=${width.toFixed(2)}`,
      `style=${QKV_STYLE[d.kind] ?? 'solid'}`,
      `tooltip=${dotString(finite ? `${e.name} ${formatScore(s)}` : e.name)}`,
    ];
    if (label) attrs.push(`label=${dotString(label)}`);
    if (!inG) attrs.push(`fontcolor=${dotString(OUTSIDE)}`, 'constraint=false');
    lines.push(`  ${dotString(graph.sources[e.src].name)} -> ${dotString(d.node)} [${attrs.join(', ')}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Text and attribute values for XML. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/**
 * GraphML with typed attributes: nodes carry kind, layer, head, in_graph (and score when the
 * circuit has node scores); edges carry their name as id, score (absent when unscored),
 * in_graph and kind (q, k, v, head, mlp, logits). Every edge by default.
 */
export function toGraphML(circuit: Circuit, options: ExportOptions = {}): string {
  const which = options.edges ?? 'all';
  const { graph } = circuit;
  const flags = nodeInGraph(circuit);
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">',
    '  <key id="nk" for="node" attr.name="kind" attr.type="string"/>',
    '  <key id="nl" for="node" attr.name="layer" attr.type="int"/>',
    '  <key id="nh" for="node" attr.name="head" attr.type="int"/>',
    '  <key id="ng" for="node" attr.name="in_graph" attr.type="boolean"/>',
    '  <key id="ns" for="node" attr.name="score" attr.type="double"/>',
    '  <key id="es" for="edge" attr.name="score" attr.type="double"/>',
    '  <key id="eg" for="edge" attr.name="in_graph" attr.type="boolean"/>',
    '  <key id="ek" for="edge" attr.name="kind" attr.type="string"/>',
    '  <graph id="circuit" edgedefault="directed">',
  ];
  for (const n of selectedNodes(circuit, which)) {
    const s = circuit.nodeScores?.[n.index];
    const score = s !== undefined && Number.isFinite(s) ? `<data key="ns">${s}</data>` : '';
    out.push(`    <node id="${escapeXml(n.name)}"><data key="nk">${n.kind}</data><data key="nl">${n.layer}</data><data key="nh">${n.head}</data><data key="ng">${flags[n.index] === 1}</data>${score}</node>`);
  }
  for (const e of selectedEdges(circuit, which)) {
    const d = graph.destinations[e.dst];
    const s = circuit.scores[e.index];
    const score = Number.isFinite(s) ? `<data key="es">${s}</data>` : '';
    out.push(`    <edge id="${escapeXml(e.name)}" source="${escapeXml(graph.sources[e.src].name)}" target="${escapeXml(d.node)}">${score}<data key="eg">${circuit.inGraph[e.index] === 1}</data><data key="ek">${d.kind}</data></edge>`);
  }
  out.push('  </graph>', '</graphml>');
  return out.join('\n') + '\n';
}

export interface GraphologyOptions extends ExportOptions {
  /**
   * How edges into q, k and v appear. `ports` (default): each head input is a node of its own
   * (`a1.h0<q>`, kind q, port true) so that every edge `u->a1.h0<q>` runs from `u` to the node its
   * name ends with, the graph stays simple (multi: false), and a `port` edge `a1.h0<q>->a1.h0`
   * joins the input to its head. `multi`: the edges go straight to the head in a multigraph.
   */
  qkv?: 'ports' | 'multi';
}

export interface CircuitNodeAttributes {
  [key: string]: unknown;
  kind: NodeKind | 'q' | 'k' | 'v';
  layer: number;
  head: number;
  in_graph: boolean;
  /** The node's score, or null. */
  score: number | null;
  /** True for a head's q/k/v input node (`ports`); `head` names its head. */
  port?: boolean;
}

export interface CircuitEdgeAttributes {
  [key: string]: unknown;
  /** The edge's score, or null when unscored (and for port edges). */
  score: number | null;
  in_graph: boolean;
  /** The destination's kind, or `port` for the edge from a head's input to the head. */
  kind: DestinationKind | 'port';
}

export interface CircuitGraphAttributes {
  [key: string]: unknown;
  n_layers: number;
  n_heads: number;
  attn_only: boolean;
  qkv: boolean;
}

export function toGraphology(circuit: Circuit, options?: GraphologyOptions & { qkv?: 'ports' }): DirectedGraph<CircuitNodeAttributes, CircuitEdgeAttributes, CircuitGraphAttributes>;
export function toGraphology(circuit: Circuit, options: GraphologyOptions & { qkv: 'multi' }): MultiDirectedGraph<CircuitNodeAttributes, CircuitEdgeAttributes, CircuitGraphAttributes>;
/** A graphology graph: node keys are node names and edge keys are edge names. */
export function toGraphology(
  circuit: Circuit,
  options: GraphologyOptions = {},
): DirectedGraph<CircuitNodeAttributes, CircuitEdgeAttributes, CircuitGraphAttributes> | MultiDirectedGraph<CircuitNodeAttributes, CircuitEdgeAttributes, CircuitGraphAttributes> {
  const which = options.edges ?? 'all';
  const multi = options.qkv === 'multi';
  const { graph } = circuit;
  const shape = graph.shape;
  const ports = !multi && shape.qkv;
  const attributes: CircuitGraphAttributes = { n_layers: shape.nLayers, n_heads: shape.nHeads, attn_only: !shape.hasMlp, qkv: shape.qkv };
  const g = !multi
    ? new DirectedGraph<CircuitNodeAttributes, CircuitEdgeAttributes, CircuitGraphAttributes>({ multi: false, allowSelfLoops: false })
    : new MultiDirectedGraph<CircuitNodeAttributes, CircuitEdgeAttributes, CircuitGraphAttributes>({ allowSelfLoops: false });
  g.replaceAttributes(attributes);
  const flags = nodeInGraph(circuit);
  for (const n of selectedNodes(circuit, which)) {
    const s = circuit.nodeScores?.[n.index];
    g.addNode(n.name, { kind: n.kind, layer: n.layer, head: n.head, in_graph: flags[n.index] === 1, score: s !== undefined && Number.isFinite(s) ? s : null });
  }
  const edges = selectedEdges(circuit, which);
  if (ports) {
    // a port is in the graph when an in-graph edge enters it; it is drawn when any selected edge does
    const portIn = new Map<number, boolean>();
    for (const e of edges) portIn.set(e.dst, (portIn.get(e.dst) ?? false) || circuit.inGraph[e.index] === 1);
    graph.destinations.forEach((d, di) => {
      if (!QKV_STYLE[d.kind] || !portIn.has(di)) return;
      const inG = portIn.get(di) === true;
      g.addNode(d.name, { kind: d.kind as 'q' | 'k' | 'v', layer: d.layer, head: d.head, in_graph: inG, score: null, port: true });
      g.addDirectedEdgeWithKey(`${d.name}->${d.node}`, d.name, d.node, { score: null, in_graph: inG, kind: 'port' });
    });
  }
  for (const e of edges) {
    const d = graph.destinations[e.dst];
    const s = circuit.scores[e.index];
    const target = ports ? d.name : d.node;
    g.addDirectedEdgeWithKey(e.name, graph.sources[e.src].name, target, { score: Number.isFinite(s) ? s : null, in_graph: circuit.inGraph[e.index] === 1, kind: d.kind });
  }
  return g;
}
