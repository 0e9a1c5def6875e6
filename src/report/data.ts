import { CircuitryError } from '../errors.js';
import { circuitCounts } from './consistency.js';
import type { CircuitFile, CircuitMeta, Example, FaithfulnessCurve, Sweep } from '../graph/circuit-types.js';
import {
  PORTS,
  TAU_FALLS,
  TAU_KEPT,
  TAU_NONE,
  type CompareCircuit,
  type ComparisonData,
  type GraphCfg,
  type MetricsData,
  type NodeKind,
  type Port,
  type ReportData,
  type ReportEdges,
  type ReportNode,
  type SummaryEntry,
} from './types.js';

/**
 * Turns circuit files into the data the report pages embed. Everything the page shows is
 * checked here, so a malformed file fails with a message naming the field instead of a blank
 * panel in the browser.
 */

export interface ReportOptions {
  /** Heading of the page (default: task · model). */
  title?: string;
  /** Where the circuit came from, used in error messages (a file path). */
  source?: string;
  /** Rows of the top-edges table (default 100). */
  topEdges?: number;
}

const NODE_RE = /^(?:input|logits|a(\d+)\.h(\d+)|m(\d+))$/;
const EDGE_RE = /^([^>]+)->([^<]+)(?:<([qkv])>)?$/;

interface NodeIndex {
  nodes: ReportNode[];
  byName: Map<string, number>;
}

function fail(source: string, field: string, expected: string, got?: unknown): never {
  const shown = got === undefined ? '' : `, got ${describe(got)}`;
  throw new CircuitryError(`${source}: ${field}: expected ${expected}${shown}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** 6 significant digits; null for anything that is not a finite number. */
function round(v: unknown): number | null {
  return finite(v) ? Number(v.toPrecision(6)) : null;
}

function optNumber(source: string, field: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!finite(v)) fail(source, field, 'a finite number', v);
  return v;
}

function optString(source: string, field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(source, field, 'a string', v);
  return v;
}

function parseNode(name: string): { kind: NodeKind; layer: number; head: number } | null {
  const m = NODE_RE.exec(name);
  if (!m) return null;
  if (name === 'input') return { kind: 'input', layer: -1, head: -1 };
  if (name === 'logits') return { kind: 'logits', layer: Number.POSITIVE_INFINITY, head: -1 };
  if (m[1] !== undefined) return { kind: 'head', layer: Number(m[1]), head: Number(m[2]) };
  return { kind: 'mlp', layer: Number(m[3]), head: -1 };
}

function checkCfg(source: string, file: CircuitFile): GraphCfg & { attnOnly?: boolean } {
  if (!isObject(file)) fail(source, 'the circuit', 'a JSON object with cfg, nodes and edges', file);
  const cfg: unknown = file.cfg;
  if (!isObject(cfg)) fail(source, 'cfg', 'an object with n_layers and n_heads', cfg);
  const nLayers = cfg.n_layers;
  const nHeads = cfg.n_heads;
  if (!(Number.isInteger(nLayers) && (nLayers as number) > 0)) fail(source, 'cfg.n_layers', 'a positive integer', nLayers);
  if (!(Number.isInteger(nHeads) && (nHeads as number) > 0)) fail(source, 'cfg.n_heads', 'a positive integer', nHeads);
  if (cfg.attn_only !== undefined && typeof cfg.attn_only !== 'boolean') fail(source, 'cfg.attn_only', 'a boolean', cfg.attn_only);
  return { nLayers: nLayers as number, nHeads: nHeads as number, attnOnly: cfg.attn_only as boolean | undefined };
}

/** Every node of the model in topological order, plus membership and scores from the file. */
function buildNodes(source: string, file: CircuitFile, cfg: GraphCfg & { attnOnly?: boolean }, edgeNodes: Set<string>): NodeIndex {
  const fileNodes: unknown = file.nodes ?? {};
  if (!isObject(fileNodes)) fail(source, 'nodes', 'an object keyed by node name', fileNodes);
  let hasMlp = cfg.attnOnly === undefined ? false : !cfg.attnOnly;
  if (cfg.attnOnly === undefined) {
    for (const n of [...edgeNodes, ...Object.keys(fileNodes)]) if (n.startsWith('m')) hasMlp = true;
  }
  const nodes: ReportNode[] = [{ name: 'input', kind: 'input', layer: -1, head: -1, inGraph: false, score: null }];
  for (let l = 0; l < cfg.nLayers; l++) {
    for (let h = 0; h < cfg.nHeads; h++) nodes.push({ name: `a${l}.h${h}`, kind: 'head', layer: l, head: h, inGraph: false, score: null });
    if (hasMlp) nodes.push({ name: `m${l}`, kind: 'mlp', layer: l, head: -1, inGraph: false, score: null });
  }
  nodes.push({ name: 'logits', kind: 'logits', layer: cfg.nLayers, head: -1, inGraph: false, score: null });
  const byName = new Map(nodes.map((n, i) => [n.name, i]));
  const shape = `${cfg.nLayers} layers and ${cfg.nHeads} heads${hasMlp ? '' : ', attention-only'}`;
  for (const [name, value] of Object.entries(fileNodes)) {
    const i = byName.get(name);
    if (i === undefined) {
      const parsed = parseNode(name);
      fail(source, `nodes["${name}"]`, parsed ? `a node of the model in cfg (${shape})` : 'a node name input, a{l}.h{h}, m{l} or logits');
    }
    if (!isObject(value)) fail(source, `nodes["${name}"]`, 'an object {in_graph, score?}', value);
    if (value.in_graph !== undefined && typeof value.in_graph !== 'boolean') fail(source, `nodes["${name}"].in_graph`, 'a boolean', value.in_graph);
    if (value.score !== undefined && value.score !== null && typeof value.score !== 'number') fail(source, `nodes["${name}"].score`, 'a number or null', value.score);
    nodes[i].inGraph = value.in_graph === true;
    nodes[i].score = round(value.score);
  }
  for (const name of edgeNodes) {
    if (!byName.has(name)) {
      fail(source, 'edges', `edge endpoints that are nodes of the model in cfg (${shape}); '${name}' is not`);
    }
  }
  return { nodes, byName };
}

function parseEdgeName(source: string, name: string): { src: string; dst: string; port: Port } {
  const m = EDGE_RE.exec(name);
  if (!m || !parseNode(m[1]) || !parseNode(m[2])) {
    fail(source, `edges["${name}"]`, 'an edge name like input->a0.h0<q>, a0.h1->m1 or m2->logits');
  }
  const dst = parseNode(m[2]);
  const port = (m[3] ?? '') as Port;
  if (port && dst?.kind !== 'head') fail(source, `edges["${name}"]`, 'a <q>/<k>/<v> suffix only on edges into attention heads');
  return { src: m[1], dst: m[2], port };
}

function buildEdges(source: string, file: CircuitFile, byName: Map<string, number>, parsed: Map<string, { src: string; dst: string; port: Port }>, evidence: Record<string, unknown>): ReportEdges {
  const out: ReportEdges = { name: [], src: [], dst: [], port: [], score: [], inGraph: [], verified: [], tauState: [], tau: [], acdcDelta: [] };
  for (const [name, value] of Object.entries(file.edges as Record<string, unknown>)) {
    const p = parsed.get(name)!;
    if (!isObject(value)) fail(source, `edges["${name}"]`, 'an object {score, in_graph}', value);
    if (value.score !== undefined && value.score !== null && typeof value.score !== 'number') fail(source, `edges["${name}"].score`, 'a number or null', value.score);
    if (value.in_graph !== undefined && typeof value.in_graph !== 'boolean') fail(source, `edges["${name}"].in_graph`, 'a boolean', value.in_graph);
    const ev = evidence[name];
    if (ev !== undefined && !isObject(ev)) fail(source, `meta.edge_evidence["${name}"]`, 'an object', ev);
    const e = (ev ?? {}) as Record<string, unknown>;
    const attribution = optNumber(source, `meta.edge_evidence["${name}"].attribution`, e.attribution);
    const verified = optNumber(source, `meta.edge_evidence["${name}"].verified`, e.verified);
    const delta = optNumber(source, `meta.edge_evidence["${name}"].acdc_delta`, e.acdc_delta);
    let tauState = TAU_NONE;
    let tau: number | null = null;
    if (e.acdc_tau === null) tauState = TAU_KEPT;
    else if (e.acdc_tau !== undefined) {
      if (!finite(e.acdc_tau)) fail(source, `meta.edge_evidence["${name}"].acdc_tau`, 'a number or null', e.acdc_tau);
      tauState = TAU_FALLS;
      tau = round(e.acdc_tau);
    }
    out.name.push(name);
    out.src.push(byName.get(p.src)!);
    out.dst.push(byName.get(p.dst)!);
    out.port.push(PORTS.indexOf(p.port));
    out.score.push(round(value.score ?? attribution));
    out.inGraph.push(value.in_graph === true ? 1 : 0);
    out.verified.push(round(verified));
    out.tauState.push(tauState);
    out.tau.push(tau);
    out.acdcDelta.push(round(delta));
  }
  return out;
}

/** Nodes, edges and membership of a circuit file, checked. */
function buildGraphPart(source: string, file: CircuitFile): { cfg: GraphCfg; nodes: ReportNode[]; edges: ReportEdges } {
  const cfgFull = checkCfg(source, file);
  const edges: unknown = file.edges;
  if (!isObject(edges)) fail(source, 'edges', 'an object keyed by edge name', edges);
  const meta: unknown = file.meta ?? {};
  if (!isObject(meta)) fail(source, 'meta', 'an object', meta);
  const evidence: unknown = meta.edge_evidence ?? {};
  if (!isObject(evidence)) fail(source, 'meta.edge_evidence', 'an object keyed by edge name', evidence);
  const parsed = new Map<string, { src: string; dst: string; port: Port }>();
  const endpoints = new Set<string>();
  for (const name of Object.keys(edges)) {
    const p = parseEdgeName(source, name);
    parsed.set(name, p);
    endpoints.add(p.src);
    endpoints.add(p.dst);
  }
  const { nodes, byName } = buildNodes(source, file, cfgFull, endpoints);
  const reportEdges = buildEdges(source, file, byName, parsed, evidence);
  for (let i = 0; i < reportEdges.name.length; i++) {
    if (reportEdges.inGraph[i]) {
      nodes[reportEdges.src[i]].inGraph = true;
      nodes[reportEdges.dst[i]].inGraph = true;
    }
  }
  return { cfg: { nLayers: cfgFull.nLayers, nHeads: cfgFull.nHeads }, nodes, edges: reportEdges };
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function formatParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

function buildSummary(source: string, meta: CircuitMeta): SummaryEntry[] {
  const rows: SummaryEntry[] = [];
  const add = (label: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') rows.push({ label, value });
  };
  if (meta.model !== undefined) {
    if (!isObject(meta.model)) fail(source, 'meta.model', 'an object {name, hash?, n_params?}', meta.model);
    const name = optString(source, 'meta.model.name', meta.model.name);
    const nParams = optNumber(source, 'meta.model.n_params', meta.model.n_params);
    add('Model', [name, nParams !== undefined ? `${formatParams(nParams)} parameters` : undefined].filter(Boolean).join(' · '));
    add('Model hash', optString(source, 'meta.model.hash', meta.model.hash));
  }
  if (meta.dataset !== undefined) {
    if (!isObject(meta.dataset)) fail(source, 'meta.dataset', 'an object {name, n_examples, hash?, seq_len?}', meta.dataset);
    const name = optString(source, 'meta.dataset.name', meta.dataset.name);
    const n = optNumber(source, 'meta.dataset.n_examples', meta.dataset.n_examples);
    const seq = optNumber(source, 'meta.dataset.seq_len', meta.dataset.seq_len);
    add('Dataset', [name, n !== undefined ? `${formatCount(n)} pairs` : undefined, seq !== undefined ? `${seq} tokens` : undefined].filter(Boolean).join(' · '));
    add('Dataset hash', optString(source, 'meta.dataset.hash', meta.dataset.hash));
  }
  add('Task', optString(source, 'meta.task', meta.task));
  add('Method', optString(source, 'meta.method', meta.method));
  add('Metric', optString(source, 'meta.metric', meta.metric));
  add('Direction', optString(source, 'meta.direction', meta.direction));
  add('Backend', optString(source, 'meta.backend', meta.backend));
  if (meta.tool !== undefined) {
    if (!isObject(meta.tool)) fail(source, 'meta.tool', 'an object {name, version}', meta.tool);
    add('Tool', `${optString(source, 'meta.tool.name', meta.tool.name) ?? ''} ${optString(source, 'meta.tool.version', meta.tool.version) ?? ''}`.trim());
  }
  add('Created', optString(source, 'meta.created', meta.created));
  return rows;
}

function stringMap(source: string, field: string, v: unknown, format: (x: unknown, key: string) => string): SummaryEntry[] {
  if (v === undefined || v === null) return [];
  if (!isObject(v)) fail(source, field, 'an object', v);
  return Object.entries(v).map(([label, value]) => ({ label, value: format(value, label) }));
}

function buildMetrics(source: string, meta: CircuitMeta): MetricsData | null {
  const out: MetricsData = {};
  if (meta.metrics !== undefined) {
    if (!isObject(meta.metrics)) fail(source, 'meta.metrics', 'an object {clean, corrupted, circuit, normalized}', meta.metrics);
    for (const k of ['clean', 'corrupted', 'empty', 'circuit', 'normalized'] as const) {
      const v = optNumber(source, `meta.metrics.${k}`, meta.metrics[k]);
      if (v !== undefined) out[k] = v;
    }
  }
  const metric = optString(source, 'meta.metric', meta.metric);
  if (metric !== undefined) out.metric = metric;
  if (meta.ground_truth !== undefined) {
    const gt: unknown = meta.ground_truth;
    if (!isObject(gt) || !Array.isArray(gt.edges)) fail(source, 'meta.ground_truth', 'an object {edges: string[], roc_auc?, precision?, recall?}', gt);
    out.groundTruth = {
      nEdges: gt.edges.length,
      rocAuc: optNumber(source, 'meta.ground_truth.roc_auc', gt.roc_auc),
      precision: optNumber(source, 'meta.ground_truth.precision', gt.precision),
      recall: optNumber(source, 'meta.ground_truth.recall', gt.recall),
    };
  }
  if (meta.acdc !== undefined) {
    const a: unknown = meta.acdc;
    if (!isObject(a) || !finite(a.tau)) fail(source, 'meta.acdc', 'an object {tau: number, order, metric, steps?}', a);
    if (a.steps !== undefined && !Array.isArray(a.steps)) fail(source, 'meta.acdc.steps', 'an array', a.steps);
    out.acdc = {
      tau: a.tau,
      order: optString(source, 'meta.acdc.order', a.order) ?? '',
      metric: optString(source, 'meta.acdc.metric', a.metric) ?? '',
      nSteps: Array.isArray(a.steps) ? a.steps.length : undefined,
    };
  }
  const keys = Object.keys(out).filter((k) => k !== 'metric');
  return keys.length ? out : null;
}

function buildFaithfulness(source: string, v: unknown): FaithfulnessCurve | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v) || !Array.isArray(v.points)) fail(source, 'meta.faithfulness', 'an object {points: [{fraction, n_edges, faithfulness}], cpr?, cmd?}', v);
  const points = v.points.map((p: unknown, i: number) => {
    if (!isObject(p)) fail(source, `meta.faithfulness.points[${i}]`, 'an object {fraction, n_edges, faithfulness}', p);
    const fraction = p.fraction;
    const faithfulness = p.faithfulness;
    if (!finite(fraction)) fail(source, `meta.faithfulness.points[${i}].fraction`, 'a finite number', fraction);
    if (!finite(faithfulness)) fail(source, `meta.faithfulness.points[${i}].faithfulness`, 'a finite number', faithfulness);
    const nEdges = optNumber(source, `meta.faithfulness.points[${i}].n_edges`, p.n_edges) ?? 0;
    return { fraction, n_edges: nEdges, faithfulness };
  });
  if (points.length === 0) return null;
  points.sort((a, b) => a.fraction - b.fraction);
  const out: FaithfulnessCurve = { points };
  const cpr = optNumber(source, 'meta.faithfulness.cpr', v.cpr);
  const cmd = optNumber(source, 'meta.faithfulness.cmd', v.cmd);
  if (cpr !== undefined) out.cpr = cpr;
  if (cmd !== undefined) out.cmd = cmd;
  return out;
}

function matrix(source: string, field: string, v: unknown, rows: number, cols: number): number[][] {
  if (!Array.isArray(v) || v.length !== rows) fail(source, field, `${rows} rows (one per label in rows)`, v);
  return v.map((row: unknown, r: number) => {
    if (!Array.isArray(row) || row.length !== cols) fail(source, `${field}[${r}]`, `${cols} values (one per label in cols)`, row);
    return row.map((x: unknown, c: number) => {
      if (x === null) return Number.NaN;
      if (typeof x !== 'number') fail(source, `${field}[${r}][${c}]`, 'a number', x);
      return x;
    });
  });
}

function buildSweeps(source: string, v: unknown): Sweep[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(source, 'meta.sweeps', 'an array of sweeps', v);
  return v.map((s: unknown, i: number) => {
    const f = `meta.sweeps[${i}]`;
    if (!isObject(s)) fail(source, f, 'an object {kind, direction, metric, rows, cols, recovery}', s);
    const labels = (key: 'rows' | 'cols'): string[] => {
      const a = s[key];
      if (!Array.isArray(a) || a.length === 0) fail(source, `${f}.${key}`, 'a non-empty array of labels', a);
      return a.map((x: unknown) => String(x));
    };
    const rows = labels('rows');
    const cols = labels('cols');
    const direction = s.direction === 'noise' || s.direction === 'denoise' ? s.direction : fail(source, `${f}.direction`, "'noise' or 'denoise'", s.direction);
    const sweep: Sweep = {
      kind: optString(source, `${f}.kind`, s.kind) ?? 'sweep',
      direction,
      metric: optString(source, `${f}.metric`, s.metric) ?? '',
      rows,
      cols,
      recovery: matrix(source, `${f}.recovery`, s.recovery, rows.length, cols.length).map((r) => r.map((x) => (Number.isFinite(x) ? Number(x.toPrecision(5)) : x))),
    };
    if (s.value !== undefined) sweep.value = matrix(source, `${f}.value`, s.value, rows.length, cols.length).map((r) => r.map((x) => (Number.isFinite(x) ? Number(x.toPrecision(5)) : x)));
    return sweep;
  });
}

function buildExamples(source: string, v: unknown): Example[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(source, 'meta.examples', 'an array of {clean, corrupted, answer, wrong}', v);
  const text = (f: string, x: unknown): string => {
    if (typeof x === 'string') return x;
    if (typeof x === 'number' || (Array.isArray(x) && x.every((t) => typeof t === 'string' || typeof t === 'number'))) return Array.isArray(x) ? x.join(' | ') : String(x);
    return fail(source, f, 'a string', x);
  };
  return v.map((e: unknown, i: number) => {
    const f = `meta.examples[${i}]`;
    if (!isObject(e)) fail(source, f, 'an object {clean, corrupted, answer, wrong}', e);
    const ex: Example = {
      clean: text(`${f}.clean`, e.clean),
      corrupted: text(`${f}.corrupted`, e.corrupted ?? ''),
      answer: text(`${f}.answer`, e.answer ?? ''),
      wrong: text(`${f}.wrong`, e.wrong ?? ''),
    };
    if (e.clean_tokens !== undefined) {
      if (!Array.isArray(e.clean_tokens)) fail(source, `${f}.clean_tokens`, 'an array of strings', e.clean_tokens);
      ex.clean_tokens = e.clean_tokens.map((t: unknown) => String(t));
    }
    return ex;
  });
}

function seconds(v: unknown): string {
  if (!finite(v)) return String(v);
  if (v < 1) return `${(v * 1000).toFixed(0)} ms`;
  if (v < 120) return `${v.toFixed(2)} s`;
  return `${(v / 60).toFixed(1)} min`;
}

/** The data of a one-circuit report page. */
export function buildReportData(file: CircuitFile, opts: ReportOptions = {}): ReportData {
  const source = opts.source ?? 'circuit';
  const { cfg, nodes, edges } = buildGraphPart(source, file);
  const meta = (file.meta ?? {}) as CircuitMeta;
  const metrics = buildMetrics(source, meta);
  const inGraph = edges.inGraph.reduce((a, b) => a + b, 0);
  const model = isObject(meta.model) && typeof meta.model.name === 'string' ? meta.model.name : null;
  const task = typeof meta.task === 'string' ? meta.task : null;
  const title = opts.title ?? ([task, model].filter(Boolean).join(' · ') || 'Circuit');
  const method = typeof meta.method === 'string' ? meta.method : null;
  const subtitle = [method ? `${method} circuit` : 'circuit', `${formatCount(inGraph)} of ${formatCount(edges.name.length)} edges`, `${cfg.nLayers} layers × ${cfg.nHeads} heads`].join(' · ');
  let config: string | null = null;
  if (meta.config !== undefined) config = typeof meta.config === 'string' ? meta.config : JSON.stringify(meta.config, null, 2);
  const topEdges = opts.topEdges ?? 100;
  if (!(Number.isInteger(topEdges) && topEdges > 0)) throw new CircuitryError(`report option topEdges: expected a positive integer, got ${topEdges}`);
  return {
    kind: 'report',
    title,
    subtitle,
    cfg,
    nodes,
    edges,
    summary: buildSummary(source, meta),
    versions: stringMap(source, 'meta.versions', meta.versions, (x) => String(x)),
    timings: stringMap(source, 'meta.timings', meta.timings, seconds),
    config,
    metrics,
    circuit: circuitCounts(file, nodes, edges),
    faithfulness: buildFaithfulness(source, meta.faithfulness),
    sweeps: buildSweeps(source, meta.sweeps),
    examples: buildExamples(source, meta.examples),
    acdcTau: metrics?.acdc?.tau ?? null,
    topEdges,
  };
}

/** |A ∩ B| / |A ∪ B|; two empty sets are identical (1). */
export function iou(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  const union = a.size + b.size - inter;
  return union === 0 ? 1 : inter / union;
}

export interface CompareInput {
  /** Shown on the page. */
  name: string;
  file: CircuitFile;
  /** Named in error messages (a file path); default: name. */
  source?: string;
}

/** The data of a comparison page over two or more circuits. */
export function buildComparisonData(files: readonly CompareInput[]): ComparisonData {
  if (files.length < 2) throw new CircuitryError(`compare: expected at least two circuits, got ${files.length}`);
  const names = new Set(files.map((f) => f.name));
  if (names.size !== files.length) throw new CircuitryError(`compare: circuit names must be unique, got ${files.map((f) => f.name).join(', ')}`);
  const parts = files.map(({ name, file, source }) => ({ name, file, ...buildGraphPart(source ?? name, file) }));
  const edgeSets = parts.map((p) => new Set(p.edges.name.filter((_, i) => p.edges.inGraph[i] === 1)));
  const nodeSets = parts.map((p) => new Set(p.nodes.filter((n) => n.inGraph).map((n) => n.name)));
  const edgeCount = new Map<string, number>();
  const nodeCount = new Map<string, number>();
  for (const s of edgeSets) for (const e of s) edgeCount.set(e, (edgeCount.get(e) ?? 0) + 1);
  for (const s of nodeSets) for (const n of s) nodeCount.set(n, (nodeCount.get(n) ?? 0) + 1);
  const k = parts.length;
  const circuits: CompareCircuit[] = parts.map((p, ci) => {
    const meta = (p.file.meta ?? {}) as CircuitMeta;
    const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    const model = isObject(meta.model) ? str(meta.model.name) : null;
    const edges = [];
    for (let i = 0; i < p.edges.name.length; i++) {
      if (p.edges.inGraph[i] !== 1) continue;
      const name = p.edges.name[i];
      edges.push({ name, src: p.edges.src[i], dst: p.edges.dst[i], port: p.edges.port[i], score: p.edges.score[i], shared: edgeCount.get(name) ?? 0 });
    }
    return {
      name: p.name,
      title: [str(meta.task), model].filter(Boolean).join(' · ') || p.name,
      model,
      task: str(meta.task),
      method: str(meta.method),
      cfg: p.cfg,
      nodes: p.nodes.map((n) => ({ ...n, shared: n.inGraph ? (nodeCount.get(n.name) ?? 0) : 0 })),
      edges,
      nNodes: nodeSets[ci].size,
      nEdges: edgeSets[ci].size,
      uniqueNodes: [...nodeSets[ci]].filter((n) => nodeCount.get(n) === 1),
      uniqueEdges: [...edgeSets[ci]].filter((e) => edgeCount.get(e) === 1),
    };
  });
  const matrixOf = (sets: Set<string>[]): number[][] => sets.map((a) => sets.map((b) => Number(iou(a, b).toFixed(4))));
  return {
    kind: 'compare',
    title: `Comparison of ${k} circuits`,
    circuits,
    iouEdges: matrixOf(edgeSets),
    iouNodes: matrixOf(nodeSets),
    sharedEdges: [...edgeCount].filter(([, c]) => c === k).map(([e]) => e),
    sharedNodes: [...nodeCount].filter(([, c]) => c === k).map(([n]) => n),
  };
}
