/**
 * The data a report page carries: built in Node from a circuit file (data.ts), embedded as JSON
 * in the HTML, read by the browser client (client/). Types only, so the client bundle can
 * import them without pulling in Node code.
 */
import type { Example, FaithfulnessCurve, Sweep } from '../graph/circuit-types.js';

export type NodeKind = 'input' | 'head' | 'mlp' | 'logits';

/** Which residual read of a destination an edge feeds: none (MLP, logits, node granularity), q, k, v. */
export const PORTS = ['', 'q', 'k', 'v'] as const;
export type Port = (typeof PORTS)[number];

export interface ReportNode {
  name: string;
  kind: NodeKind;
  layer: number; // -1 for input, n_layers for logits
  head: number; // -1 unless a head
  /** In the saved circuit: flagged in `nodes`, or an endpoint of an in-graph edge. */
  inGraph: boolean;
  score: number | null;
}

/** ACDC evidence of an edge: no evidence, falls once τ ≥ its value, or kept at every τ tried. */
export const TAU_NONE = 0;
export const TAU_FALLS = 1;
export const TAU_KEPT = 2;

/**
 * Edges as columns (one entry per edge, same order in every array) — compact for the
 * 32,491 edges of GPT-2 small. Numbers are rounded to 6 significant digits.
 */
export interface ReportEdges {
  name: string[];
  src: number[]; // index into nodes
  dst: number[]; // index into nodes
  port: number[]; // index into PORTS
  score: (number | null)[]; // attribution score
  inGraph: number[]; // 1 = in the saved circuit
  verified: (number | null)[]; // exact path-patching effect
  tauState: number[]; // TAU_NONE | TAU_FALLS | TAU_KEPT
  tau: (number | null)[]; // the τ at which the edge fell (TAU_FALLS only)
  acdcDelta: (number | null)[];
}

export interface GraphCfg {
  nLayers: number;
  nHeads: number;
}

export interface SummaryEntry {
  label: string;
  value: string;
}

export interface MetricsData {
  metric?: string;
  clean?: number;
  corrupted?: number;
  empty?: number;
  circuit?: number;
  normalized?: number;
  groundTruth?: { nEdges: number; rocAuc?: number; precision?: number; recall?: number };
  acdc?: { tau: number; order: string; metric: string; nSteps?: number };
}

/** The circuit as its edges' in_graph flags define it, and where the file says otherwise. */
export interface CircuitCounts {
  /** Edges with in_graph: true, of all edges. */
  edges: number;
  totalEdges: number;
  /** Nodes that an in-graph edge touches. */
  nodes: number;
  /** Each a sentence: a field of meta (or a node flag) that disagrees with the edges. */
  warnings: string[];
}

export interface ReportData {
  kind: 'report';
  title: string;
  subtitle: string;
  cfg: GraphCfg;
  nodes: ReportNode[];
  edges: ReportEdges;
  /** Provenance rows (model, dataset, backend, …), versions and timings (seconds). */
  summary: SummaryEntry[];
  versions: SummaryEntry[];
  timings: SummaryEntry[];
  /** The resolved configuration, pretty-printed JSON (shown as text). */
  config: string | null;
  metrics: MetricsData | null;
  /** Recomputed from the edges; an empty circuit (0 edges) gets a message instead of a drawing. */
  circuit: CircuitCounts;
  faithfulness: FaithfulnessCurve | null;
  sweeps: Sweep[];
  examples: Example[];
  /** Default τ of the threshold control (the run's τ). */
  acdcTau: number | null;
  /** Rows of the top-edges table. */
  topEdges: number;
}

export interface CompareEdge {
  name: string;
  src: number;
  dst: number;
  port: number;
  score: number | null;
  /** How many of the compared circuits contain this edge. */
  shared: number;
}

export interface CompareCircuit {
  name: string;
  title: string;
  model: string | null;
  task: string | null;
  method: string | null;
  cfg: GraphCfg;
  /** Every node of the model (for the layout); inGraph marks the circuit's own. */
  nodes: (ReportNode & { shared: number })[];
  /** The circuit's in-graph edges. */
  edges: CompareEdge[];
  nNodes: number;
  nEdges: number;
  uniqueNodes: string[];
  uniqueEdges: string[];
}

export interface ComparisonData {
  kind: 'compare';
  title: string;
  circuits: CompareCircuit[];
  iouEdges: number[][];
  iouNodes: number[][];
  sharedNodes: string[]; // in every circuit
  sharedEdges: string[];
}

export type PageData = ReportData | ComparisonData;
