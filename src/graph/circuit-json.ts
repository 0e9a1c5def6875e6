import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/files.js';
import { z } from 'zod';
import { CircuitryError } from '../errors.js';
import { describeShape, nodeInGraph, nodeTable } from './circuit.js';
import type { Circuit } from './circuit.js';
import type { CircuitFile, CircuitMeta } from './circuit-types.js';
import { CircuitGraph } from './graph.js';
import type { GraphShape } from './graph.js';

/**
 * Circuit files (JSON) in the EAP-IG / MIB layout: `cfg`, `nodes`, `edges` keyed by name, plus
 * circuitry's `meta`. Files written by EAP-IG load as they are, including node-granularity and
 * attention-only graphs, `score: null` and Python's bare `NaN` / `Infinity`.
 */

/** Extra `cfg` fields for circuitToJson (d_model is required unless the circuit carries dModel). */
export type CfgExtra = Partial<CircuitFile['cfg']> & Record<string, unknown>;

/** The file for a circuit: every node and edge of its graph, in canonical order. */
export function circuitToJson(circuit: Circuit, meta: CircuitMeta = {}, cfgExtra: CfgExtra = {}): CircuitFile {
  const { graph } = circuit;
  const shape = graph.shape;
  const dModel = cfgExtra.d_model ?? circuit.dModel;
  if (dModel === undefined || !Number.isInteger(dModel) || dModel <= 0) {
    throw new CircuitryError(`circuit file cfg.d_model: expected a positive integer (EAP-IG and MIB loaders read it), got ${String(dModel)}; pass it as cfg.d_model or set the circuit's dModel`);
  }
  for (const [key, value] of [['n_layers', shape.nLayers], ['n_heads', shape.nHeads], ['attn_only', !shape.hasMlp], ['qkv', shape.qkv], ['parallel_attn_mlp', shape.parallelAttnMlp === true]] as const) {
    if (cfgExtra[key] !== undefined && cfgExtra[key] !== value) {
      throw new CircuitryError(`circuit file cfg.${key}: the circuit's graph has ${key} = ${value}, but ${String(cfgExtra[key])} was passed`);
    }
  }
  const cfg: CircuitFile['cfg'] = {
    ...cfgExtra,
    n_layers: shape.nLayers,
    n_heads: shape.nHeads,
    d_model: dModel,
    parallel_attn_mlp: shape.parallelAttnMlp === true,
    attn_only: !shape.hasMlp,
    qkv: shape.qkv,
  };
  const table = nodeTable(graph);
  const flags = nodeInGraph(circuit);
  const nodes: CircuitFile['nodes'] = {};
  for (const n of table.nodes) {
    const score = circuit.nodeScores?.[n.index];
    // EAP-IG's loader keeps NaN for nodes without a score key, and cannot take null.
    nodes[n.name] = score !== undefined && Number.isFinite(score) ? { in_graph: flags[n.index] === 1, score } : { in_graph: flags[n.index] === 1 };
  }
  const edges: CircuitFile['edges'] = {};
  for (const e of graph.edges) {
    const s = circuit.scores[e.index];
    edges[e.name] = { score: Number.isFinite(s) ? s : null, in_graph: circuit.inGraph[e.index] === 1 };
  }
  return { cfg, nodes, edges, meta };
}

/**
 * Writes a circuit file atomically: a temporary file in the same folder, flushed, then renamed
 * over `path` (the folder is created if needed). Non-finite numbers are written as null.
 */
export function writeCircuitFile(path: string, file: CircuitFile, options: { indent?: number } = {}): void {
  const text = JSON.stringify(file, null, options.indent) + '\n';
  writeFileAtomic(path, text);
}

/** Kept here for importers of the graph API; the implementation lives in src/io/files.ts. */
export { writeFileAtomic };

/** Reads and validates a circuit file; messages name the file and the key. */
export function readCircuitFile(path: string): { file: CircuitFile; circuit: Circuit } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CircuitryError(code === 'ENOENT' ? `${path}: no such circuit file` : `${path}: cannot read the circuit file (${(err as Error).message})`);
  }
  return parseCircuitJson(text, path);
}

/** Parses and validates the text of a circuit file; `label` names it in messages. */
export function parseCircuitJson(text: string, label = 'circuit file'): { file: CircuitFile; circuit: Circuit } {
  return circuitFromFile(parseJsonLenient(text, label), label);
}

/** Validates an already parsed circuit file (e.g. from JSON.parse) and builds its circuit. */
export function circuitFromFile(data: unknown, label = 'circuit file'): { file: CircuitFile; circuit: Circuit } {
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const [first, ...rest] = parsed.error.issues;
    const where = first.path.length ? `${formatPath(first.path)}: ` : '';
    const more = rest.length ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
    throw new CircuitryError(`${label}: ${where}${first.message}${more}`);
  }
  const file: CircuitFile = parsed.data;
  const { cfg } = file;
  const shape = detectShape(file);
  const graph = new CircuitGraph(shape);
  const table = nodeTable(graph);
  const nodeScores = new Float32Array(table.nodes.length).fill(Number.NaN);
  let anyNodeScore = false;
  for (const [name, node] of Object.entries(file.nodes)) {
    const i = table.indexOf(name);
    if (i === undefined) throw new CircuitryError(`${label}: nodes${formatKey(name)} is not a node of a ${describeShape(shape)}`);
    if (typeof node.score === 'number') {
      nodeScores[i] = node.score;
      anyNodeScore = true;
    }
  }
  const scores = new Float32Array(graph.denseSize).fill(Number.NaN);
  const inGraph = new Uint8Array(graph.denseSize);
  for (const [name, edge] of Object.entries(file.edges)) {
    if (!graph.hasEdge(name)) {
      throw new CircuitryError(`${label}: edges${formatKey(name)} is not an edge of a ${describeShape(shape)}${edgeHint(name, shape)}`);
    }
    const { index } = graph.edge(name);
    scores[index] = edge.score ?? Number.NaN;
    inGraph[index] = edge.in_graph ? 1 : 0;
  }
  const circuit: Circuit = { graph, scores, inGraph, dModel: cfg.d_model, ...(anyNodeScore ? { nodeScores } : {}) };
  return { file, circuit };
}

/**
 * The graph shape of a file. `cfg.attn_only` and `cfg.qkv` decide when present (circuitry writes
 * them); otherwise the names do: no `m{l}` node or edge means attention-only, and edges into heads
 * without `<q>`/`<k>`/`<v>` mean node granularity (EAP-IG files always split q/k/v).
 */
function detectShape(file: CircuitFile): GraphShape {
  const { cfg } = file;
  const edgeNames = Object.keys(file.edges);
  const mlpName = /^m\d+$/;
  const hasMlp = cfg.attn_only !== undefined
    ? !cfg.attn_only
    : cfg.parallel_attn_mlp === true || Object.keys(file.nodes).some((n) => mlpName.test(n)) ||
      edgeNames.some((e) => e.split('->').some((end) => mlpName.test(end))) ||
      (edgeNames.length === 0 && Object.keys(file.nodes).length === 0);
  let qkv = cfg.qkv;
  if (qkv === undefined) {
    const intoHead = edgeNames.filter((e) => /->a\d+\.h\d+(<[qkv]>)?$/.test(e));
    qkv = intoHead.length === 0 || intoHead.some((e) => /<[qkv]>$/.test(e));
  }
  const parallelAttnMlp = cfg.parallel_attn_mlp === true;
  if (parallelAttnMlp && !hasMlp) throw new CircuitryError('cfg.parallel_attn_mlp: true needs MLPs, but the file is attention-only');
  // n_kv_heads, when a file has it, changes nothing: grouped-query attention is ungrouped (edges depend on n_heads only)
  return { nLayers: cfg.n_layers, nHeads: cfg.n_heads, hasMlp, qkv, ...(parallelAttnMlp ? { parallelAttnMlp } : {}) };
}

function edgeHint(name: string, shape: GraphShape): string {
  const intoHead = /->a\d+\.h\d+$/.test(name);
  if (shape.qkv && intoHead) return '; edges into heads name their input: <q>, <k> or <v>';
  if (!shape.qkv && /<[qkv]>$/.test(name)) return '; this file uses node granularity (no <q>/<k>/<v>) elsewhere';
  const ownMlp = /^a(\d+)\.h\d+->m(\d+)$/.exec(name);
  if (shape.parallelAttnMlp && ownMlp && ownMlp[1] === ownMlp[2]) return `; with cfg.parallel_attn_mlp: true, m${ownMlp[2]} reads its block's input, not layer ${ownMlp[1]}'s heads`;
  return '; edges go from input, a{l}.h{h} or m{l} to a later a{l}.h{h}<q|k|v>, m{l} or logits';
}

// ---------------------------------------------------------------------------------------------
// Schema

function got(input: unknown): string {
  if (input === undefined) return 'nothing';
  const s = JSON.stringify(input);
  return s === undefined ? typeof input : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function err(expected: string) {
  return (iss: { input?: unknown }) => (iss.input === undefined ? `missing: expected ${expected}` : `expected ${expected}, got ${got(iss.input)}`);
}

const positiveInt = () => {
  const e = err('a positive integer');
  return z.number({ error: e }).int({ error: e }).min(1, { error: e });
};
const optionalBool = () => z.boolean({ error: err('true or false') }).optional();
const nullableNumber = () => z.number({ error: err('a number or null') }).nullable().optional();

const cfgSchema = z.looseObject(
  {
    n_layers: positiveInt(),
    n_heads: positiveInt(),
    d_model: positiveInt(),
    d_mlp: positiveInt().optional(),
    parallel_attn_mlp: optionalBool().default(false),
    attn_only: optionalBool(),
    qkv: optionalBool(),
  },
  { error: err('an object with n_layers, n_heads and d_model') },
);

const nodeSchema = z.looseObject(
  { in_graph: z.boolean({ error: err('true or false') }), score: nullableNumber() },
  { error: err('an object {in_graph, score?}') },
);

const edgeSchema = z.looseObject(
  { score: nullableNumber().default(null), in_graph: z.boolean({ error: err('true or false') }) },
  { error: err('an object {score, in_graph}') },
);

const fileSchema = z.looseObject(
  {
    cfg: cfgSchema,
    nodes: z.record(z.string(), nodeSchema, { error: err('an object keyed by node name') }).optional().default({}),
    edges: z.record(z.string(), edgeSchema, { error: err('an object keyed by edge name') }),
    meta: z.record(z.string(), z.unknown(), { error: err('an object') }).optional(),
  },
  { error: err('a JSON object with cfg, nodes and edges') },
);

/** `cfg.n_layers`, `edges['a0.h0->m1'].score`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((seg, i) => {
      if (typeof seg === 'number') return `[${seg}]`;
      const s = String(seg);
      if (/^[A-Za-z_$][\w$]*$/.test(s)) return i === 0 ? s : `.${s}`;
      return formatKey(s);
    })
    .join('');
}

function formatKey(key: string): string {
  return `['${key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

// ---------------------------------------------------------------------------------------------
// JSON as Python writes it

/** JSON.parse that also takes Python's bare NaN / Infinity / -Infinity (read as null). */
export function parseJsonLenient(text: string, label: string): unknown {
  try {
    return JSON.parse(text);
  } catch (first) {
    const cleaned = replaceNonFinite(text);
    if (cleaned !== text) {
      try {
        return JSON.parse(cleaned);
      } catch {
        // report the original error below
      }
    }
    throw new CircuitryError(`${label}: not valid JSON (${(first as Error).message})`);
  }
}

function replaceNonFinite(text: string): string {
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      continue;
    }
    for (const token of ['NaN', '-Infinity', 'Infinity']) {
      if (text.startsWith(token, i) && !/[\w.]/.test(text[i + token.length] ?? '') && !/[\w.]/.test(text[i - 1] ?? '')) {
        out += text.slice(last, i) + 'null';
        i += token.length - 1;
        last = i + 1;
        break;
      }
    }
  }
  return out + text.slice(last);
}
