import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareCommand } from '../src/cli/commands/compare.js';
import { reportCommand } from '../src/cli/commands/report.js';
import { CircuitryError } from '../src/errors.js';
import type { CircuitFile } from '../src/graph/circuit-types.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { clientBundle } from '../src/report/bundle.js';
import { ThresholdModel } from '../src/report/client/threshold.js';
import { buildComparisonData, buildReportData, iou } from '../src/report/data.js';
import { circuitNames, readCircuitJson, writeComparison, writeReport } from '../src/report/files.js';
import { renderComparison, renderReport, safeJson } from '../src/report/render.js';
import { PORTS, TAU_FALLS, TAU_KEPT, TAU_NONE, type ComparisonData, type ReportData } from '../src/report/types.js';
import { fixtureCircuit, plantedCircuit, randomCircuit, XSS_STRINGS, xssCircuit } from './helpers/report-fixtures.js';

/** The JSON data element of a rendered page, parsed. */
function pageData<T = ReportData>(html: string): T {
  const m = /<script type="application\/json" id="circuitry-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]) as T;
}

function minimalCircuit(): CircuitFile {
  const g = new CircuitGraph({ nLayers: 2, nHeads: 2, hasMlp: true, qkv: true });
  const file: CircuitFile = { cfg: { n_layers: 2, n_heads: 2, d_model: 8, parallel_attn_mlp: false }, nodes: {}, edges: {} };
  g.edges.forEach((e, i) => {
    file.edges[e.name] = { score: (i % 5) - 2, in_graph: i % 3 === 0 };
  });
  return file;
}

function expectCircuitryError(fn: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CircuitryError);
  for (const f of fragments) expect((caught as Error).message).toContain(f);
}

describe('safeJson', () => {
  it('escapes every character that could end the script element or break JS, and round-trips', () => {
    const value = { a: '</script><script>alert(1)</script>', b: '<!-- x -->', c: 'a & b > c', d: 'line\u2028sep\u2029end', e: ['"><img src=x onerror=alert(1)>'] };
    const s = safeJson(value);
    expect(s).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(s)).toEqual(value);
  });
});

describe('renderReport', () => {
  let planted: string;
  beforeAll(() => {
    planted = renderReport(plantedCircuit());
  });

  it('is one self-contained document: no external resources, exactly two script elements, CSP pinned to the inline client', () => {
    expect(planted.startsWith('<!doctype html>')).toBe(true);
    expect(/<script[^>]+src=/i.test(planted)).toBe(false);
    expect(/<link[^>]+href=/i.test(planted)).toBe(false);
    expect(/<(img|iframe|object|embed)\b/i.test(planted)).toBe(false);
    const scripts = [...planted.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((s) => s[1].trim())).toEqual(['type="application/json" id="circuitry-data"', '']);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(planted)?.[1] ?? '';
    const hash = createHash('sha256').update(scripts[1][2], 'utf8').digest('base64');
    expect(csp.replace(/&#39;/g, "'")).toContain(`script-src 'sha256-${hash}'`);
    expect(csp).toContain("default-src &#39;none&#39;");
  });

  it('shows every panel whose data is present', () => {
    for (const id of ['panel-graph', 'panel-details', 'panel-metrics', 'panel-summary', 'panel-faithfulness', 'panel-sweeps', 'panel-top-edges', 'panel-examples']) {
      expect(planted.includes(`id="${id}"`), id).toBe(true);
    }
    expect(planted.includes('<option value="tau">')).toBe(true);
  });

  it('hides panels whose data is absent', () => {
    const html = renderReport(minimalCircuit());
    for (const id of ['panel-graph', 'panel-details', 'panel-top-edges']) expect(html.includes(`id="${id}"`), id).toBe(true);
    for (const id of ['panel-metrics', 'panel-summary', 'panel-faithfulness', 'panel-sweeps', 'panel-examples']) expect(html.includes(`id="${id}"`), id).toBe(false);
    expect(html.includes('<option value="tau">')).toBe(false);
  });

  it('keeps hostile strings out of the markup: they exist only as escaped JSON data', () => {
    const html = renderReport(xssCircuit());
    const withoutData = html.replace(/<script type="application\/json" id="circuitry-data">[\s\S]*?<\/script>/, '');
    for (const s of XSS_STRINGS) expect(html.includes(s), s).toBe(false);
    expect(/<img/i.test(html)).toBe(false);
    // outside the data element, 'alert(' only occurs inside the entity-escaped title
    expect(withoutData.split('alert(').length - 1).toBe(2);
    // the title is the one place data reaches the markup, and it is entity-escaped there
    expect(withoutData).toContain('<title>task &lt;script&gt;alert(1)&lt;/script&gt; · model &quot;&gt;&lt;img src=x onerror=alert(1)&gt; — circuitry</title>');
    const data = pageData(html);
    expect(data.examples[0].clean).toBe(`Prompt ${XSS_STRINGS[0]} end`);
    expect(data.examples[0].clean_tokens).toContain('</script><script>alert(2)</script>');
    expect(data.examples[1].clean).toContain('\u2028');
    expect(data.sweeps[0].rows).toEqual([...XSS_STRINGS]);
  });

  it('bundles the client once per process into a string safe to inline', () => {
    const a = clientBundle();
    const t = performance.now();
    const b = clientBundle();
    expect(performance.now() - t).toBeLessThan(5);
    expect(b).toBe(a);
    expect(a.length).toBeGreaterThan(50_000);
    expect(/<\/script/i.test(a)).toBe(false);
    expect(a.includes('<!--')).toBe(false);
  });
});

describe('buildReportData', () => {
  it('reads the tiny-gpt2 reference circuit: 12 nodes, 110 edges with ports, evidence and membership', () => {
    const file = fixtureCircuit();
    const d = buildReportData(file);
    expect(d.nodes.map((n) => n.name)).toEqual(['input', 'a0.h0', 'a0.h1', 'a0.h2', 'a0.h3', 'm0', 'a1.h0', 'a1.h1', 'a1.h2', 'a1.h3', 'm1', 'logits']);
    expect(d.edges.name).toHaveLength(110);
    const i = d.edges.name.indexOf('input->a0.h0<v>');
    expect(d.nodes[d.edges.src[i]].name).toBe('input');
    expect(d.nodes[d.edges.dst[i]].name).toBe('a0.h0');
    expect(PORTS[d.edges.port[i]]).toBe('v');
    expect(d.edges.score[i]).toBeCloseTo(-0.11546919494867325, 5);
    expect(d.edges.verified[i]).toBeCloseTo(-0.207107812166214, 5);
    expect(PORTS[d.edges.port[d.edges.name.indexOf('m0->logits')]]).toBe('');
    const inGraph = Object.values(file.edges).filter((e) => e.in_graph).length;
    expect(d.edges.inGraph.reduce((a, b) => a + b, 0)).toBe(inGraph);
    expect(d.edges.tauState.filter((s) => s === TAU_KEPT).length).toBe(2); // kept at τ = 0.01 as well
    expect(d.edges.tauState.every((s) => s !== TAU_NONE)).toBe(true);
    // a node is in the circuit when an in-graph edge touches it
    for (let e = 0; e < 110; e++) {
      if (d.edges.inGraph[e]) expect(d.nodes[d.edges.src[e]].inGraph && d.nodes[d.edges.dst[e]].inGraph).toBe(true);
    }
    expect(d.acdcTau).toBe(0.001);
  });

  it('names the file and field of bad input', () => {
    const bad = (mut: (f: CircuitFile & Record<string, unknown>) => void): CircuitFile => {
      const f = minimalCircuit() as CircuitFile & Record<string, unknown>;
      mut(f);
      return f;
    };
    expectCircuitryError(() => buildReportData(bad((f) => ((f.cfg as Record<string, unknown>).n_layers = 0)), { source: 'x.json' }), 'x.json', 'cfg.n_layers', 'positive integer');
    expectCircuitryError(() => buildReportData(bad((f) => (f.edges['a5.h0->logits'] = { score: 1, in_graph: true })), { source: 'x.json' }), 'x.json', "'a5.h0'");
    expectCircuitryError(() => buildReportData(bad((f) => (f.edges['input->m0<q>'] = { score: 1, in_graph: true }))), 'input->m0<q>', 'attention heads');
    expectCircuitryError(() => buildReportData(bad((f) => (f.edges['bogus'] = { score: 1, in_graph: true }))), 'edges["bogus"]');
    expectCircuitryError(() => buildReportData(bad((f) => ((f.edges['input->m0'] as Record<string, unknown>).score = 'big'))), 'edges["input->m0"].score');
    expectCircuitryError(
      () => buildReportData(bad((f) => (f.meta = { sweeps: [{ kind: 'heads', direction: 'noise', metric: 'kl', rows: ['L0', 'L1'], cols: ['H0'], recovery: [[0.1], [0.2, 0.3]] }] }))),
      'meta.sweeps[0].recovery[1]',
      '1 values',
    );
    expectCircuitryError(() => buildReportData(bad((f) => (f.meta = { faithfulness: { points: [{ fraction: 'a', n_edges: 1, faithfulness: 1 }] } } as never))), 'meta.faithfulness.points[0].fraction');
    expectCircuitryError(() => buildReportData(bad((f) => (f.meta = { edge_evidence: { 'input->m0': { acdc_tau: 'x' } } } as never))), 'acdc_tau');
  });
});

describe('threshold semantics', () => {
  const d = buildReportData(fixtureCircuit());
  const model = new ThresholdModel(d);
  const count = (m: Uint8Array): number => m.reduce((a, b) => a + b, 0);

  it('score mode: raising the threshold never adds edges; the loosest stop draws the whole candidate set', () => {
    for (const scopeAll of [false, true]) {
      const stops = model.stops('score', scopeAll);
      const counts = stops.map((t) => count(model.mask('score', t, scopeAll)));
      expect(counts[0]).toBe(model.candidates(scopeAll));
      for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeLessThanOrEqual(counts[i - 1]);
      expect(counts[counts.length - 1]).toBeGreaterThanOrEqual(1);
      expect(counts[counts.length - 1]).toBeLessThan(counts[0]);
    }
    expect(model.candidates(true)).toBe(110);
    expect(model.candidates(false)).toBe(d.edges.inGraph.reduce((a, b) => a + b, 0));
  });

  it('τ mode: an edge falls once τ reaches its acdc_tau; null never falls', () => {
    const stops = model.stops('tau', true);
    expect(stops).toEqual([0, 0.0003, 0.001, 0.003, 0.01]);
    for (const t of stops) {
      const mask = model.mask('tau', t, true);
      for (let i = 0; i < 110; i++) {
        const expected = d.edges.tauState[i] === TAU_KEPT || (d.edges.tauState[i] === TAU_FALLS && d.edges.tau[i]! > t);
        expect(mask[i] === 1).toBe(expected);
      }
    }
    const counts = stops.map((t) => count(model.mask('tau', t, true)));
    expect(counts[0]).toBe(110);
    expect(counts[counts.length - 1]).toBe(2);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeLessThan(counts[i - 1]);
  });

  it('thins a large graph to ~1000 slider stops, keeping every value of the heavy tail and the given thresholds', () => {
    const big = buildReportData(randomCircuit(12, 12, 42));
    const abs = big.edges.score.map((s) => Math.abs(s ?? 0));
    const distinct = [...new Set(abs)].sort((a, b) => b - a);
    const keep = 0.0123456;
    const stops = new ThresholdModel(big).stops('score', true, [keep]);
    expect(big.edges.name).toHaveLength(32491);
    expect(stops.length).toBeLessThanOrEqual(1001);
    expect(stops.length).toBeGreaterThan(900);
    expect(stops[0]).toBe(Math.min(...abs));
    const set = new Set(stops);
    for (const v of distinct.slice(0, 600)) expect(set.has(v)).toBe(true);
    expect(set.has(keep)).toBe(true);
    for (let i = 1; i < stops.length; i++) expect(stops[i]).toBeGreaterThan(stops[i - 1]);
  });
});

describe('comparison', () => {
  const base = minimalCircuit();
  const names = Object.keys(base.edges);
  const withEdges = (set: string[]): CircuitFile => ({ ...base, edges: Object.fromEntries(names.map((n) => [n, { score: 1, in_graph: set.includes(n) }])) });

  it('computes IoU of edges and nodes and the shared and unique parts', () => {
    const [e0, e1, e2, e3] = ['input->a0.h0<q>', 'input->m0', 'm0->logits', 'a1.h1->logits'];
    const data = buildComparisonData([
      { name: 'A', file: withEdges([e0, e1, e2]) },
      { name: 'B', file: withEdges([e1, e2, e3]) },
    ]);
    expect(data.iouEdges).toEqual([
      [1, 0.5],
      [0.5, 1],
    ]);
    // nodes: A = input, a0.h0, m0, logits; B = input, m0, logits, a1.h1
    expect(data.iouNodes[0][1]).toBeCloseTo(3 / 5, 4);
    expect(data.sharedEdges.sort()).toEqual([e1, e2].sort());
    expect(data.circuits[0].uniqueEdges).toEqual([e0]);
    expect(data.circuits[1].uniqueEdges).toEqual([e3]);
    expect(data.circuits[0].uniqueNodes).toEqual(['a0.h0']);
    expect(data.circuits[0].edges.find((e) => e.name === e1)?.shared).toBe(2);
    expect(iou(new Set(), new Set())).toBe(1);
  });

  it('renders a page with the drawings, overlap and IoU panels', () => {
    const html = renderComparison([
      { name: 'ioi', file: plantedCircuit() },
      { name: 'gt', file: plantedCircuit({ task: 'greater-than' }) },
    ]);
    for (const id of ['panel-circuit-0', 'panel-circuit-1', 'panel-overlap', 'panel-iou-edges', 'panel-iou-nodes']) expect(html.includes(`id="${id}"`), id).toBe(true);
    const data = pageData<ComparisonData>(html);
    expect(data.kind).toBe('compare');
    expect(data.circuits.map((c) => c.name)).toEqual(['ioi', 'gt']);
    expect(data.iouEdges[0][1]).toBeGreaterThan(0);
    expect(data.iouEdges[0][1]).toBeLessThan(1);
  });

  it('refuses fewer than two circuits and duplicate names', () => {
    expectCircuitryError(() => renderComparison([{ name: 'a', file: base }]), 'at least two');
    expectCircuitryError(() => renderComparison([{ name: 'a', file: base }, { name: 'a', file: base }]), 'unique');
  });
});

describe('report files and commands', () => {
  let dir: string;
  let circuitPath: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-report-'));
    circuitPath = join(dir, 'ioi.json');
    writeFileSync(circuitPath, JSON.stringify(plantedCircuit()));
    writeFileSync(join(dir, 'gt.json'), JSON.stringify(plantedCircuit({ task: 'greater-than' })));
    writeFileSync(join(dir, 'broken.json'), '{"cfg": {');
    writeFileSync(join(dir, 'list.json'), '[1, 2, 3]');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('report writes the HTML atomically to --out and leaves no temporary file', async () => {
    const out = join(dir, 'nested', 'out', 'ioi.html');
    const code = await reportCommand.run({ circuit: circuitPath, out, 'top-edges': 25 });
    expect(code).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(pageData(html).topEdges).toBe(25);
    expect(readdirSync(join(dir, 'nested', 'out'))).toEqual(['ioi.html']);
  });

  it('report defaults to reports/<basename>.html', () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const { out } = writeReport(circuitPath);
      expect(out).toBe(join('reports', 'ioi.html'));
      expect(existsSync(join(dir, 'reports', 'ioi.html'))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it('bad input names the file', () => {
    expectCircuitryError(() => readCircuitJson(join(dir, 'missing.json')), 'missing.json', 'no such circuit file');
    expectCircuitryError(() => readCircuitJson(join(dir, 'broken.json')), 'broken.json', 'not valid JSON');
    expectCircuitryError(() => readCircuitJson(join(dir, 'list.json')), 'list.json', 'expected a JSON object with cfg, nodes and edges');
    expectCircuitryError(() => readCircuitJson(dir), 'EISDIR');
    const bad = join(dir, 'bad-cfg.json');
    writeFileSync(bad, JSON.stringify({ ...minimalCircuit(), cfg: { n_layers: 'two', n_heads: 2 } }));
    expectCircuitryError(() => writeReport(bad, join(dir, 'bad.html')), 'bad-cfg.json', 'cfg.n_layers');
    expect(existsSync(join(dir, 'bad.html'))).toBe(false);
  });

  it('compare writes one page from two files; refuses one file', async () => {
    const out = join(dir, 'cmp.html');
    expect(await compareCommand.run({ circuits: [circuitPath, join(dir, 'gt.json')], out })).toBe(0);
    const data = pageData<ComparisonData>(readFileSync(out, 'utf8'));
    expect(data.circuits.map((c) => c.name)).toEqual(['ioi', 'gt']);
    await expect(compareCommand.run({ circuits: [circuitPath], out })).rejects.toThrow(CircuitryError);
    expectCircuitryError(() => writeComparison([circuitPath, join(dir, 'broken.json')], out), 'broken.json');
  });

  it('gives compared files unique display names', () => {
    expect(circuitNames(['a/ioi.json', 'b/gt.json'])).toEqual(['ioi', 'gt']);
    expect(circuitNames(['runs/a/ioi.json', 'runs/b/ioi.json'])).toEqual(['a/ioi', 'b/ioi']);
    expect(circuitNames(['x/ioi.json', 'x/ioi.json'])).toEqual(['ioi (1)', 'ioi (2)']);
  });
});
