import { describe, it, expect, afterEach } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CircuitryError } from '../src/errors.js';
import {
  CircuitGraph,
  circuitFromEdgeScores,
  circuitToJson,
  collapseToNodes,
  countInGraph,
  createCircuit,
  edgeCountFormula,
  edgeInGraph,
  edgeScore,
  inGraphNodes,
  nodeScore,
  parseCircuitJson,
  readCircuitFile,
  toDot,
  toGraphML,
  toGraphology,
  topN,
  withEdges,
  writeCircuitFile,
} from '../src/graph/index.js';
import type { Circuit, GraphShape } from '../src/graph/index.js';
import { TINY, readJson } from './helpers/fixtures.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'circuitry-graph-'));
  dirs.push(d);
  return d;
}

/** Elementwise equality, NaN equal to NaN; JSON has no -0, so -0 and 0 count as the same score. */
function expectSameScores(a: Float32Array, b: Float32Array): void {
  const plain = (x: Float32Array) => Array.from(x, (v) => (v === 0 ? 0 : v));
  expect(plain(a)).toEqual(plain(b));
}

const shape = (nLayers: number, nHeads: number, hasMlp = true, qkv = true): GraphShape => ({ nLayers, nHeads, hasMlp, qkv });

interface EdgesFixture {
  n_edges: number;
  edges: Record<string, { eap: number; exact_patch_delta: number }>;
}
const fixture = readJson<EdgesFixture>(TINY, 'edges.json');
const tinyGraph = new CircuitGraph(shape(2, 4));

function tinyCircuit(): Circuit {
  const scores = Object.fromEntries(Object.entries(fixture.edges).map(([k, v]) => [k, v.eap]));
  return circuitFromEdgeScores(tinyGraph, scores, { dModel: 64 });
}

/** DESIGN.md's formula, written out as it stands there. */
function designFormula(L: number, H: number): number {
  let a = 0;
  let b = 0;
  for (let l = 0; l < L; l++) {
    a += 1 + l * (H + 1);
    b += 1 + l * (H + 1) + H;
  }
  return 3 * H * a + b + 1 + L * (H + 1);
}

describe('edge count and canonical names', () => {
  it('matches DESIGN.md formula for several shapes, 32,491 for GPT-2 small', () => {
    expect(designFormula(12, 12)).toBe(32491);
    for (const [L, H] of [[1, 1], [2, 4], [3, 5], [4, 2], [12, 12], [6, 16]]) {
      const g = new CircuitGraph(shape(L, H));
      expect(g.nEdges).toBe(designFormula(L, H));
      expect(edgeCountFormula(g.shape)).toBe(g.nEdges);
    }
    expect(new CircuitGraph(shape(12, 12)).nEdges).toBe(32491);
  });

  it('has a closed form for attention-only and node-granularity graphs', () => {
    for (const [L, H] of [[1, 1], [2, 3], [5, 4]]) {
      for (const hasMlp of [true, false]) {
        for (const qkv of [true, false]) {
          expect(edgeCountFormula(shape(L, H, hasMlp, qkv))).toBe(new CircuitGraph(shape(L, H, hasMlp, qkv)).nEdges);
        }
      }
    }
    // attention-only 1×1 with q/k/v: 3 into a0.h0, input and a0.h0 into logits
    expect(edgeCountFormula(shape(1, 1, false, true))).toBe(5);
    expect(edgeCountFormula(shape(1, 1, true, false))).toBe(6);
  });

  it('lists the fixture edges in exactly the canonical order', () => {
    expect(fixture.n_edges).toBe(110);
    expect(Object.keys(fixture.edges)).toEqual(tinyGraph.edges.map((e) => e.name));
  });
});

describe('Circuit', () => {
  it('holds dense scores and membership with NaN for unscored edges', () => {
    const c = tinyCircuit();
    expect(c.scores.length).toBe(tinyGraph.denseSize);
    expect(edgeScore(c, 'input->a0.h0<v>')).toBeCloseTo(-0.11546919494867325, 7);
    expect(countInGraph(c)).toBe(0);
    const partial = circuitFromEdgeScores(tinyGraph, { 'input->m0': 1, 'a0.h0->m0': null });
    expect(edgeScore(partial, 'input->m0')).toBe(1);
    expect(edgeScore(partial, 'a0.h0->m0')).toBeNaN();
    expect(edgeScore(partial, 'm1->logits')).toBeNaN();
  });

  it('derives node membership from in-graph edges', () => {
    const c = withEdges(tinyCircuit(), ['a0.h1->a1.h2<k>']);
    expect(inGraphNodes(c)).toEqual(['input', 'a0.h1', 'a1.h2', 'logits']);
    expect(inGraphNodes(withEdges(c, []))).toEqual([]);
  });

  it('rejects arrays of the wrong size and unknown edge names', () => {
    expect(() => createCircuit(tinyGraph, { scores: new Float32Array(3) })).toThrow(/circuit scores: expected \d+ dense values/);
    expect(() => circuitFromEdgeScores(tinyGraph, { 'a0.h0->m9': 1 })).toThrow(CircuitryError);
    expect(() => withEdges(tinyCircuit(), ['input->a0.h0'])).toThrow(/unknown edge 'input->a0.h0'/);
  });

  it('returns new values and leaves its arguments alone', () => {
    const c = tinyCircuit();
    const before = { scores: c.scores.slice(), inGraph: c.inGraph.slice() };
    const d = withEdges(c, ['input->m0']);
    topN(d, 5);
    collapseToNodes(d);
    expect(c.scores).toEqual(before.scores);
    expect(c.inGraph).toEqual(before.inGraph);
    expect(edgeInGraph(d, 'input->m0')).toBe(true);
    expect(d.scores).not.toBe(c.scores);
  });
});

describe('circuit JSON', () => {
  it('round-trips scores, in_graph, node scores and meta through a file', () => {
    const dir = tempDir();
    const nodeScores = new Float32Array(tinyGraph.nSrc + 1).fill(Number.NaN);
    nodeScores[1] = 0.25;
    nodeScores[5] = -1.5;
    const base = tinyCircuit();
    const scores = base.scores.slice();
    scores[tinyGraph.edge('m1->logits').index] = Number.NaN; // an unscored edge
    const c = topN(createCircuit(tinyGraph, { scores, nodeScores, dModel: 64 }), 12);
    const meta = { task: 'toy', method: 'eap', metrics: { clean: 0.34, corrupted: -0.044 }, timings: { screen: 1.5 }, custom: { nested: [1, 'two'] } };
    const path = join(dir, 'nested', 'deeper', 'circuit.json');
    writeCircuitFile(path, circuitToJson(c, meta));
    expect(readdirSync(join(dir, 'nested', 'deeper'))).toEqual(['circuit.json']); // no temp file left
    const text = readFileSync(path, 'utf8');
    expect(text).not.toMatch(/NaN/);
    const { file, circuit } = readCircuitFile(path);
    expect(circuit.graph.shape).toEqual(tinyGraph.shape);
    expectSameScores(circuit.scores, c.scores);
    expect(circuit.inGraph).toEqual(c.inGraph);
    expect(countInGraph(circuit)).toBe(12);
    expect(circuit.nodeScores).toEqual(nodeScores);
    expect(circuit.dModel).toBe(64);
    expect(file.meta).toEqual(meta);
    expect(file.edges['m1->logits']).toEqual({ score: null, in_graph: false });
    expect(Object.keys(file.edges)).toHaveLength(110);
    expect(Object.keys(file.nodes)).toEqual(tinyGraph.nodes);
    expect(file.cfg).toMatchObject({ n_layers: 2, n_heads: 4, d_model: 64, parallel_attn_mlp: false });
    expect(file.nodes['a0.h0']).toEqual({ in_graph: inGraphNodes(c).includes('a0.h0'), score: 0.25 });
    expect(file.nodes['a0.h3']).not.toHaveProperty('score');
  });

  it('replaces an existing file and needs d_model', () => {
    const dir = tempDir();
    const path = join(dir, 'c.json');
    writeFileSync(path, 'old');
    writeCircuitFile(path, circuitToJson(tinyCircuit()));
    expectSameScores(readCircuitFile(path).circuit.scores, tinyCircuit().scores);
    const noWidth = circuitFromEdgeScores(tinyGraph, {});
    expect(() => circuitToJson(noWidth)).toThrow(/cfg\.d_model: expected a positive integer/);
    expect(circuitToJson(noWidth, {}, { d_model: 32, d_mlp: 128 }).cfg).toMatchObject({ d_model: 32, d_mlp: 128 });
    expect(() => circuitToJson(noWidth, {}, { d_model: 32, n_layers: 3 })).toThrow(/cfg\.n_layers/);
  });

  /** An EAP-IG style file of a 1-layer, 1-head model, as Python's json.dump writes it. */
  const eapIgText = `{"cfg": {"n_layers": 1, "n_heads": 1, "parallel_attn_mlp": false, "d_model": 8, "d_vocab": 50},
    "nodes": {"input": {"in_graph": true, "score": NaN}, "a0.h0": {"in_graph": true, "score": 0.5, "neurons": [true]},
              "m0": {"in_graph": false, "score": -Infinity}, "logits": {"in_graph": true}},
    "edges": {"input->a0.h0<q>": {"score": 0.1, "in_graph": false}, "input->a0.h0<k>": {"score": null, "in_graph": false},
              "input->a0.h0<v>": {"score": -2.0, "in_graph": true}, "input->m0": {"score": NaN, "in_graph": false},
              "a0.h0->m0": {"score": 0.0, "in_graph": false}, "input->logits": {"score": 1e-3, "in_graph": false},
              "a0.h0->logits": {"score": 3, "in_graph": true}, "m0->logits": {"score": 0.25, "in_graph": false}}}`;

  it('loads EAP-IG files: extra cfg keys, null, bare NaN / Infinity, neurons', () => {
    const { file, circuit } = parseCircuitJson(eapIgText, 'eap.json');
    expect(circuit.graph.shape).toEqual(shape(1, 1, true, true));
    expect(file.cfg).toMatchObject({ d_model: 8, d_vocab: 50 });
    expect(edgeScore(circuit, 'input->a0.h0<k>')).toBeNaN();
    expect(edgeScore(circuit, 'input->m0')).toBeNaN();
    expect(edgeScore(circuit, 'input->a0.h0<v>')).toBe(-2);
    expect(edgeScore(circuit, 'input->logits')).toBe(Math.fround(1e-3));
    expect(inGraphNodes(circuit)).toEqual(['input', 'a0.h0', 'logits']);
    expect(nodeScore(circuit, 'a0.h0')).toBe(0.5);
    expect(nodeScore(circuit, 'input')).toBeNaN();
    expect(nodeScore(circuit, 'm0')).toBeNaN();
  });

  it('detects node granularity and attention-only graphs from the names', () => {
    const nodeLevel = parseCircuitJson(JSON.stringify({
      cfg: { n_layers: 2, n_heads: 1, d_model: 4, parallel_attn_mlp: false },
      nodes: {},
      edges: { 'input->a1.h0': { in_graph: true }, 'a0.h0->a1.h0': { score: 2, in_graph: false }, 'm1->logits': { score: 3, in_graph: true } },
    }));
    expect(nodeLevel.circuit.graph.shape).toEqual(shape(2, 1, true, false));
    expect(nodeLevel.file.edges['input->a1.h0']).toEqual({ score: null, in_graph: true }); // a missing score reads as none
    expect(edgeScore(nodeLevel.circuit, 'input->a1.h0')).toBeNaN();
    expect(edgeScore(nodeLevel.circuit, 'a0.h0->a1.h0')).toBe(2);
    const attnOnly = parseCircuitJson(JSON.stringify({
      cfg: { n_layers: 2, n_heads: 2, d_model: 4, parallel_attn_mlp: false },
      nodes: { input: { in_graph: true }, 'a0.h0': { in_graph: true }, 'a1.h1': { in_graph: false }, logits: { in_graph: true } },
      edges: { 'a0.h0->a1.h1<k>': { score: 1, in_graph: true }, 'a1.h1->logits': { score: 2, in_graph: true } },
    }));
    expect(attnOnly.circuit.graph.shape).toEqual(shape(2, 2, false, true));
    expect(attnOnly.circuit.graph.nEdges).toBe(edgeCountFormula(shape(2, 2, false, true)));
    // circuitry's own files say so in cfg, and those keys win over detection
    const written = circuitToJson(collapseToNodes(withEdges(tinyCircuit(), ['m1->logits'])));
    expect(written.cfg).toMatchObject({ qkv: false, attn_only: false });
    const back = parseCircuitJson(JSON.stringify(written)).circuit;
    expect(back.graph.shape).toEqual(shape(2, 4, true, false));
    expect(countInGraph(back)).toBe(1);
  });

  const bad = (mutate: (f: Record<string, unknown> & { cfg: Record<string, unknown>; edges: Record<string, unknown>; nodes: Record<string, unknown> }) => void): string => {
    const f = JSON.parse(JSON.stringify(circuitToJson(tinyCircuit())));
    mutate(f);
    return JSON.stringify(f);
  };
  const message = (text: string, label = 'graphs/x.json'): string => {
    try {
      parseCircuitJson(text, label);
    } catch (e) {
      expect(e).toBeInstanceOf(CircuitryError);
      return (e as Error).message;
    }
    throw new Error('expected a CircuitryError');
  };

  it('names the file and the key in every validation message', () => {
    expect(message(bad((f) => (f.edges['a0.h0->m9'] = { score: 1, in_graph: true })))).toBe(
      "graphs/x.json: edges['a0.h0->m9'] is not an edge of a 2-layer, 4-head graph; edges go from input, a{l}.h{h} or m{l} to a later a{l}.h{h}<q|k|v>, m{l} or logits",
    );
    expect(message(bad((f) => (f.cfg.n_layers = -1)))).toBe('graphs/x.json: cfg.n_layers: expected a positive integer, got -1');
    expect(message(bad((f) => (f.cfg.n_heads = 2.5)))).toBe('graphs/x.json: cfg.n_heads: expected a positive integer, got 2.5');
    expect(message(bad((f) => delete (f.cfg as Record<string, unknown>).d_model))).toBe('graphs/x.json: cfg.d_model: missing: expected a positive integer');
    expect(message(bad((f) => (f.edges['input->m0'] = { score: 1, in_graph: 'yes' })))).toBe(`graphs/x.json: edges['input->m0'].in_graph: expected true or false, got "yes"`);
    expect(message(bad((f) => (f.edges['input->m0'] = { score: '0.5', in_graph: true })))).toBe(`graphs/x.json: edges['input->m0'].score: expected a number or null, got "0.5"`);
    expect(message(bad((f) => (f.nodes['a7.h0'] = { in_graph: true })))).toBe("graphs/x.json: nodes['a7.h0'] is not a node of a 2-layer, 4-head graph");
    expect(message(bad((f) => delete (f as Record<string, unknown>).edges))).toBe('graphs/x.json: edges: missing: expected an object keyed by edge name');
    // a parallel block's MLP reads its block input: the file's a0.h0->m0 is not an edge there
    expect(message(bad((f) => ((f.cfg.parallel_attn_mlp = true), (f.edges['a0.h0->m0'] = { score: 1, in_graph: true }))))).toBe(
      "graphs/x.json: edges['a0.h0->m0'] is not an edge of a 2-layer, 4-head graph (parallel attention + MLP); with cfg.parallel_attn_mlp: true, m0 reads its block's input, not layer 0's heads",
    );
    expect(message(bad((f) => (f.edges['input->a0.h0'] = { score: 1, in_graph: true })))).toMatch(/edges\['input->a0\.h0'\] is not an edge .*<q>, <k> or <v>/);
    expect(message('[1, 2]')).toBe('graphs/x.json: expected a JSON object with cfg, nodes and edges, got [1,2]');
    expect(message('{"cfg": ')).toMatch(/^graphs\/x\.json: not valid JSON/);
    expect(message(bad((f) => (f.cfg.n_layers = 0, f.cfg.n_heads = 0)))).toMatch(/cfg\.n_layers: .*\(and 1 more problem\)$/);
  });

  it('leaves nothing half-written when a write fails', () => {
    const dir = tempDir();
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    expect(() => writeCircuitFile(join(file, 'c.json'), circuitToJson(tinyCircuit()))).toThrow(/plain\/c\.json: could not write the file/);
    // renaming onto a folder fails after the temporary file was written: it must be removed
    const target = join(dir, 'taken.json');
    mkdirSync(join(target, 'inside'), { recursive: true });
    expect(() => writeCircuitFile(target, circuitToJson(tinyCircuit()))).toThrow(CircuitryError);
    expect(readdirSync(dir).sort()).toEqual(['plain', 'taken.json']);
  });

  it('reports a missing file by its path', () => {
    const path = join(tempDir(), 'nope.json');
    expect(() => readCircuitFile(path)).toThrow(`${path}: no such circuit file`);
    expect(existsSync(path)).toBe(false);
  });
});

/** A minimal DOT tokenizer: quoted strings, words, `->` and punctuation; throws on an unterminated string. */
function dotTokens(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) i++;
    else if (text.startsWith('//', i)) i = text.indexOf('\n', i) === -1 ? text.length : text.indexOf('\n', i);
    else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) throw new Error(`unterminated string at ${i}`);
      tokens.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (text.startsWith('->', i)) {
      tokens.push('->');
      i += 2;
    } else if (/[\w.#-]/.test(c)) {
      let j = i;
      while (j < text.length && /[\w.#-]/.test(text[j]) && !text.startsWith('->', j)) j++;
      tokens.push(text.slice(i, j));
      i = j;
    } else {
      tokens.push(c);
      i++;
    }
  }
  return tokens;
}
const unquote = (s: string) => s.slice(1, -1).replace(/\\(.)/g, '$1');

/** Parses DOT's statements: returns node declarations and edges (with their attributes). */
function parseDot(text: string): { nodes: Set<string>; edges: { from: string; to: string; attrs: Record<string, string> }[] } {
  const t = dotTokens(text);
  expect(t[0]).toBe('digraph');
  expect(t[2]).toBe('{');
  expect(t[t.length - 1]).toBe('}');
  let depth = 0;
  for (const x of t) {
    if (x === '{') depth++;
    if (x === '}' && --depth < 0) throw new Error('unbalanced }');
  }
  expect(depth).toBe(0);
  const nodes = new Set<string>();
  const edges: { from: string; to: string; attrs: Record<string, string> }[] = [];
  const attrsAt = (i: number): [Record<string, string>, number] => {
    const attrs: Record<string, string> = {};
    if (t[i] !== '[') return [attrs, i];
    i++;
    while (t[i] !== ']') {
      const k = t[i];
      expect(t[i + 1]).toBe('=');
      attrs[k] = t[i + 2].startsWith('"') ? unquote(t[i + 2]) : t[i + 2];
      i += 3;
      if (t[i] === ',') i++;
    }
    return [attrs, i + 1];
  };
  for (let i = 3; i < t.length - 1; ) {
    if (t[i].startsWith('"') && t[i + 1] === '->') {
      const [attrs, next] = attrsAt(i + 3);
      edges.push({ from: unquote(t[i]), to: unquote(t[i + 2]), attrs });
      i = next;
    } else if (t[i].startsWith('"') && t[i + 1] === '[') {
      nodes.add(unquote(t[i]));
      i = attrsAt(i + 1)[1];
    } else i++;
  }
  return { nodes, edges };
}

/** Well-formedness: matched tags, quoted attributes, only known entities, no stray '<' or '&'. */
function checkXml(xml: string): { tag: string; attrs: Record<string, string>; text: string }[] {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  expect(body.length).toBeLessThan(xml.length);
  const elements: { tag: string; attrs: Record<string, string>; text: string }[] = [];
  const stack: string[] = [];
  const tagRe = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  const entity = /&(amp|lt|gt|quot|apos);/g;
  const decode = (s: string) => s.replace(entity, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e]!);
  const checkText = (s: string) => expect(s.replace(entity, '')).not.toMatch(/[<&]/);
  let i = 0;
  let sawRoot = false;
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    const text = lt === -1 ? body.slice(i) : body.slice(i, lt);
    checkText(text);
    if (stack.length === 0) expect(text.trim()).toBe('');
    if (lt === -1) break;
    tagRe.lastIndex = lt;
    const m = tagRe.exec(body);
    if (!m) throw new Error(`malformed tag at ${lt}: ${body.slice(lt, lt + 60)}`);
    const [, close, tag, attrText, selfClose] = m;
    if (close) {
      expect(stack.pop()).toBe(tag);
    } else {
      if (stack.length === 0) {
        expect(sawRoot).toBe(false);
        sawRoot = true;
      }
      const attrs: Record<string, string> = {};
      for (const a of attrText.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
        checkText(a[2]);
        expect(attrs).not.toHaveProperty(a[1]);
        attrs[a[1]] = decode(a[2]);
      }
      const close = body.indexOf('<', tagRe.lastIndex);
      elements.push({ tag, attrs, text: decode(body.slice(tagRe.lastIndex, close === -1 ? undefined : close)) });
      if (!selfClose) stack.push(tag);
    }
    i = tagRe.lastIndex;
  }
  expect(stack).toEqual([]);
  expect(sawRoot).toBe(true);
  return elements;
}

describe('exports', () => {
  const circuit = withEdges(tinyCircuit(), ['input->a0.h0<v>', 'a0.h0->a1.h2<q>', 'a0.h0->a1.h2<k>', 'a1.h2->logits', 'm1->logits', 'input->m1']);

  it('writes DOT with the in-graph edges, widths from |score|, sign colours and q/k/v styles', () => {
    const dot = toDot(circuit, { title: 'IOI "name mover" \\ test' });
    const { nodes, edges } = parseDot(dot);
    expect(edges).toHaveLength(6);
    expect(new Set(edges.map((e) => e.attrs.id))).toEqual(new Set(['input->a0.h0<v>', 'a0.h0->a1.h2<q>', 'a0.h0->a1.h2<k>', 'a1.h2->logits', 'm1->logits', 'input->m1']));
    expect(nodes).toEqual(new Set(['input', 'a0.h0', 'a1.h2', 'm1', 'logits']));
    for (const e of edges) {
      expect(nodes.has(e.from) && nodes.has(e.to)).toBe(true);
      const s = edgeScore(circuit, e.attrs.id);
      expect(e.attrs.color).toBe(s < 0 ? '#b2182b' : '#2166ac');
    }
    const byId = Object.fromEntries(edges.map((e) => [e.attrs.id, e]));
    expect(byId['a0.h0->a1.h2<q>'].to).toBe('a1.h2');
    expect(byId['a0.h0->a1.h2<q>'].attrs.style).toBe('dashed');
    expect(byId['a0.h0->a1.h2<k>'].attrs.style).toBe('dotted');
    expect(byId['a0.h0->a1.h2<k>'].attrs.label.startsWith('k ')).toBe(true);
    const abs = edges.map((e) => Math.abs(edgeScore(circuit, e.attrs.id)));
    const widest = edges[abs.indexOf(Math.max(...abs))];
    expect(widest.attrs.penwidth).toBe('5.00');
    expect(Math.min(...edges.map((e) => Number(e.attrs.penwidth)))).toBeGreaterThanOrEqual(0.5);
    expect(dot).toContain('label="IOI \\"name mover\\" \\\\ test"');
    expect(parseDot(toDot(circuit, { edges: 'all' })).edges).toHaveLength(110);
  });

  it('writes well-formed GraphML with escaped names and typed score / in_graph data', () => {
    const xml = toGraphML(circuit);
    const elements = checkXml(xml);
    expect(xml).toContain('id="a0.h0-&gt;a1.h2&lt;q&gt;"');
    expect(xml).not.toMatch(/<q>|->/);
    const edges = elements.filter((e) => e.tag === 'edge');
    expect(edges).toHaveLength(110);
    expect(edges.map((e) => e.attrs.id)).toEqual(tinyGraph.edges.map((e) => e.name));
    const nodeIds = new Set(elements.filter((e) => e.tag === 'node').map((e) => e.attrs.id));
    expect(nodeIds).toEqual(new Set(tinyGraph.nodes));
    for (const e of edges) expect(nodeIds.has(e.attrs.source) && nodeIds.has(e.attrs.target)).toBe(true);
    // the data children of one edge, in order: score, in_graph, kind
    const i = elements.findIndex((e) => e.tag === 'edge' && e.attrs.id === 'a0.h0->a1.h2<k>');
    expect(elements.slice(i + 1, i + 4).map((e) => [e.attrs.key, e.text])).toEqual([
      ['es', String(edgeScore(circuit, 'a0.h0->a1.h2<k>'))],
      ['eg', 'true'],
      ['ek', 'k'],
    ]);
    const j = elements.findIndex((e) => e.tag === 'edge' && e.attrs.id === 'input->m0');
    expect(elements[j + 2].text).toBe('false');
    expect(checkXml(toGraphML(circuit, { edges: 'in-graph' })).filter((e) => e.tag === 'edge')).toHaveLength(6);
  });

  it('builds a simple graphology graph keyed by edge names, q/k/v inputs as port nodes', () => {
    const g = toGraphology(circuit);
    expect(g.multi).toBe(false);
    expect(g.type).toBe('directed');
    const real = g.filterEdges((_, a) => a.kind !== 'port');
    expect(real).toEqual(tinyGraph.edges.map((e) => e.name));
    expect(g.size - real.length).toBe(3 * 2 * 4); // one port edge per head input
    expect(g.source('a0.h0->a1.h2<q>')).toBe('a0.h0');
    expect(g.target('a0.h0->a1.h2<q>')).toBe('a1.h2<q>');
    expect(g.getEdgeAttributes('a0.h0->a1.h2<q>')).toEqual({ score: edgeScore(circuit, 'a0.h0->a1.h2<q>'), in_graph: true, kind: 'q' });
    expect(g.getEdgeAttribute('input->m0', 'in_graph')).toBe(false);
    expect(g.getNodeAttributes('a1.h2')).toMatchObject({ kind: 'head', layer: 1, head: 2, in_graph: true });
    expect(g.getNodeAttributes('m1')).toMatchObject({ kind: 'mlp', layer: 1, head: -1 });
    expect(g.getNodeAttributes('a1.h2<k>')).toMatchObject({ kind: 'k', port: true, in_graph: true });
    expect(g.getEdgeAttributes('a1.h2<k>->a1.h2')).toMatchObject({ kind: 'port', in_graph: true });
    expect(g.getEdgeAttribute('a1.h2<v>->a1.h2', 'in_graph')).toBe(false);
    expect(g.getAttributes()).toEqual({ n_layers: 2, n_heads: 4, attn_only: false, qkv: true });

    // only the circuit: input reaches logits through in-graph edges
    const small = toGraphology(circuit, { edges: 'in-graph' });
    expect(small.filterEdges((_, a) => a.kind !== 'port').sort()).toEqual(['a0.h0->a1.h2<k>', 'a0.h0->a1.h2<q>', 'a1.h2->logits', 'input->a0.h0<v>', 'input->m1', 'm1->logits']);
    const seen = new Set(['input']);
    const queue = ['input'];
    while (queue.length) {
      for (const n of small.outNeighbors(queue.shift()!)) {
        if (!seen.has(n)) {
          seen.add(n);
          queue.push(n);
        }
      }
    }
    expect(seen.has('logits')).toBe(true);
  });

  it('offers a multigraph with q/k/v edges straight into heads, and node granularity needs no ports', () => {
    const m = toGraphology(circuit, { qkv: 'multi' });
    expect(m.multi).toBe(true);
    expect(m.size).toBe(110);
    expect(m.target('a0.h0->a1.h2<k>')).toBe('a1.h2');
    expect(m.edges('a0.h0', 'a1.h2').sort()).toEqual(['a0.h0->a1.h2<k>', 'a0.h0->a1.h2<q>', 'a0.h0->a1.h2<v>']);
    const nodeLevel = toGraphology(collapseToNodes(circuit));
    expect(nodeLevel.multi).toBe(false);
    expect(nodeLevel.size).toBe(edgeCountFormula(shape(2, 4, true, false)));
    expect(nodeLevel.getEdgeAttributes('a0.h0->a1.h2')).toMatchObject({ kind: 'head', in_graph: true });
  });
});

describe('collapseToNodes', () => {
  const g = new CircuitGraph(shape(1, 1));
  const c = withEdges(
    circuitFromEdgeScores(g, { 'input->a0.h0<q>': 1, 'input->a0.h0<k>': -3, 'input->a0.h0<v>': 0.5, 'a0.h0->m0': 0.75, 'input->m0': null, 'm0->logits': -2 }),
    ['input->a0.h0<k>', 'm0->logits'],
  );

  it('sums q/k/v scores into one edge per head input, in the graph if any was', () => {
    const n = collapseToNodes(c);
    expect(n.graph.shape.qkv).toBe(false);
    expect(n.graph.edges.map((e) => e.name)).toEqual(['input->a0.h0', 'input->m0', 'a0.h0->m0', 'input->logits', 'a0.h0->logits', 'm0->logits']);
    expect(edgeScore(n, 'input->a0.h0')).toBe(-1.5);
    expect(edgeScore(n, 'a0.h0->m0')).toBe(0.75);
    expect(edgeScore(n, 'm0->logits')).toBe(-2);
    expect(edgeScore(n, 'input->m0')).toBeNaN();
    expect(edgeScore(n, 'input->logits')).toBeNaN();
    expect(n.graph.edges.filter((e) => n.inGraph[e.index]).map((e) => e.name)).toEqual(['input->a0.h0', 'm0->logits']);
    expect(inGraphNodes(n)).toEqual(inGraphNodes(c));
  });

  it('takes the signed score of largest magnitude with max-abs, skipping unscored inputs', () => {
    expect(edgeScore(collapseToNodes(c, { reduce: 'max-abs' }), 'input->a0.h0')).toBe(-3);
    const partial = circuitFromEdgeScores(g, { 'input->a0.h0<k>': 2 });
    expect(edgeScore(collapseToNodes(partial), 'input->a0.h0')).toBe(2);
    expect(edgeScore(collapseToNodes(partial, { reduce: 'max-abs' }), 'input->a0.h0')).toBe(2);
  });

  it('agrees with the fixture sums on the tiny model and is idempotent', () => {
    const n = collapseToNodes(tinyCircuit());
    const e = fixture.edges;
    const want = e['a0.h1->a1.h3<q>'].eap + e['a0.h1->a1.h3<k>'].eap + e['a0.h1->a1.h3<v>'].eap;
    expect(edgeScore(n, 'a0.h1->a1.h3')).toBeCloseTo(want, 6);
    expect(n.graph.nEdges).toBe(edgeCountFormula(shape(2, 4, true, false)));
    const again = collapseToNodes(n);
    expect(again.scores).toEqual(n.scores);
    expect(again.graph).toBe(n.graph);
  });
});

describe('parallel attention + MLP blocks (GPT-NeoX)', () => {
  const parallel = (L: number, H: number): GraphShape => ({ nLayers: L, nHeads: H, hasMlp: true, qkv: true, parallelAttnMlp: true });
  /** (3H + 1)·Σ_{l<L}(1 + l(H+1)) + 1 + L(H+1): each MLP reads only the sources before its layer's heads. */
  const parallelFormula = (L: number, H: number) => {
    let before = 0;
    for (let l = 0; l < L; l++) before += 1 + l * (H + 1);
    return (3 * H + 1) * before + 1 + L * (H + 1);
  };

  it('has no edge a{l}.* -> m{l}, L·H edges fewer than the sequential graph', () => {
    for (const [L, H] of [[1, 1], [2, 4], [3, 5], [6, 8]]) {
      const g = new CircuitGraph(parallel(L, H));
      expect(g.nEdges).toBe(parallelFormula(L, H));
      expect(edgeCountFormula(g.shape)).toBe(g.nEdges);
      expect(g.nEdges).toBe(new CircuitGraph(shape(L, H)).nEdges - L * H);
    }
    const g = new CircuitGraph(parallel(2, 4));
    expect(g.nEdges).toBe(102);
    expect(g.hasEdge('a0.h0->m0')).toBe(false);
    expect(g.hasEdge('a0.h0->m1')).toBe(true);
    expect(g.hasEdge('input->m0')).toBe(true);
    expect(() => new CircuitGraph({ ...parallel(2, 4), hasMlp: false })).toThrow(/needs MLPs/);
  });

  it('writes cfg.parallel_attn_mlp: true and reads it back, as EAP-IG files say it', () => {
    const g = new CircuitGraph(parallel(2, 4));
    const written = circuitToJson(circuitFromEdgeScores(g, { 'a0.h1->m1': 0.5 }), {}, { d_model: 64 });
    expect(written.cfg).toMatchObject({ n_layers: 2, n_heads: 4, d_model: 64, parallel_attn_mlp: true });
    expect(Object.keys(written.edges)).toHaveLength(102);
    const back = parseCircuitJson(JSON.stringify(written)).circuit;
    expect(back.graph.shape).toEqual(parallel(2, 4));
    expect(back.scores[g.edge('a0.h1->m1').index]).toBeCloseTo(0.5);
    // an EAP-IG file: only the four cfg keys its Graph.from_json reads (plus n_kv_heads, which changes nothing)
    const eapIg = { cfg: { n_layers: 2, n_heads: 4, parallel_attn_mlp: true, d_model: 64, n_kv_heads: 2 }, nodes: {}, edges: { 'a0.h1->a1.h2<k>': { score: 1, in_graph: true } } };
    expect(parseCircuitJson(JSON.stringify(eapIg)).circuit.graph.nEdges).toBe(102);
  });
});
