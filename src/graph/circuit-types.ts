/**
 * The circuit file (JSON), compatible with EAP-IG / MIB graph files: `cfg`, `nodes`, `edges`,
 * plus circuitry's `meta` (provenance and everything the report draws). All fields of `meta`
 * are optional so that files written by EAP-IG or MIB load as they are.
 */
export interface CircuitFile {
  /**
   * EAP-IG's Graph.from_json reads n_layers, n_heads, parallel_attn_mlp and d_model. A parallel
   * block (NeoX) has no edge a{l}.* -> m{l}; grouped-query attention needs no key (it is
   * ungrouped: the edges depend on n_heads only).
   */
  cfg: { n_layers: number; n_heads: number; d_model: number; parallel_attn_mlp: boolean; d_mlp?: number; attn_only?: boolean; qkv?: boolean };
  nodes: Record<string, { in_graph: boolean; score?: number | null }>;
  edges: Record<string, { score: number | null; in_graph: boolean }>;
  meta?: CircuitMeta;
}

/** The recipe of a run's dataset. */
export type DatasetSpec =
  | { readonly task: { readonly name: string; readonly n: number; readonly seed: number; readonly options?: Readonly<Record<string, unknown>> } }
  | { readonly file: string };

export interface CircuitMeta {
  tool?: { name: 'circuitry'; version: string };
  created?: string; // ISO time
  backend?: string;
  model?: { name: string; hash?: string; source?: string; n_params?: number };
  dataset?: {
    name: string;
    source?: string;
    hash?: string;
    n_examples: number;
    seq_len?: number;
    /** How to re-create it: a built-in task with its options, or a JSONL file (`circuitry evaluate` uses this). */
    spec?: DatasetSpec;
  };
  task?: string;
  metric?: string; // logit-diff, kl, …
  method?: string; // eap, eap-ig, acdc, pipeline, …
  direction?: 'noise' | 'denoise';
  config?: unknown; // the resolved pipeline / command configuration
  versions?: Record<string, string>;
  timings?: Record<string, number>; // seconds per stage
  /** Values of the metric on the full model, the corrupted run, the empty circuit and the circuit. */
  metrics?: { clean?: number; corrupted?: number; empty?: number; circuit?: number; normalized?: number };
  /** Per-edge evidence beyond `score` (the attribution score). */
  edge_evidence?: Record<string, EdgeEvidence>;
  acdc?: { tau: number; order: string; metric: string; steps?: AcdcStep[] };
  faithfulness?: FaithfulnessCurve;
  ground_truth?: { edges: string[]; roc_auc?: number; precision?: number; recall?: number };
  sweeps?: Sweep[];
  examples?: Example[];
  [key: string]: unknown;
}

export interface EdgeEvidence {
  attribution?: number; // EAP / EAP-IG score
  verified?: number; // exact path-patching effect (delta of the metric)
  /** The τ at which ACDC removed this edge (edges with delta below τ fall); null = kept at every τ tried. */
  acdc_tau?: number | null;
  acdc_delta?: number;
}

export interface AcdcStep {
  edge: string;
  metric_if_removed: number;
  delta: number;
  removed: boolean;
}

export interface FaithfulnessCurve {
  /** Fractions of edges (0.001 … 1) with the normalized faithfulness f(C) at each. */
  points: { fraction: number; n_edges: number; faithfulness: number }[];
  cpr?: number; // area under f (MIB's CPR)
  cmd?: number; // area under |1 − f| (MIB's CMD)
}

export interface Sweep {
  kind: string; // resid, attn-out, mlp-out, heads, heads-by-pos, qkv, pattern, neurons:L, edges
  direction: 'noise' | 'denoise';
  metric: string;
  /** Row and column labels (e.g. layers × positions, layers × heads). */
  rows: string[];
  cols: string[];
  /** recovery[row][col] (normalized), and the raw metric value. */
  recovery: number[][];
  value?: number[][];
}

export interface Example {
  clean: string;
  corrupted: string;
  answer: string;
  wrong: string;
  clean_tokens?: string[];
}
