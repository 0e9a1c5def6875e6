import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CircuitFile } from '../src/graph/circuit-types.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { buildReportData } from '../src/report/data.js';
import { renderReport } from '../src/report/render.js';
import type { ReportData } from '../src/report/types.js';
import { chromiumAvailable, launchChromium, loadReport, openPage, type Browser } from './helpers/report-browser.js';
import { plantedCircuit } from './helpers/report-fixtures.js';

/** A 2-layer circuit whose edges keep every `keepEvery`-th edge (0: none) and whose meta claims a 99-edge circuit that recovers everything. */
function circuit(keepEvery: number): CircuitFile {
  const g = new CircuitGraph({ nLayers: 2, nHeads: 2, hasMlp: true, qkv: true });
  const file: CircuitFile = { cfg: { n_layers: 2, n_heads: 2, d_model: 8, parallel_attn_mlp: false }, nodes: {}, edges: {} };
  g.edges.forEach((e, i) => {
    file.edges[e.name] = { score: ((i % 7) - 3) / 10, in_graph: keepEvery > 0 && i % keepEvery === 0 };
  });
  file.meta = {
    metric: 'logit-diff',
    method: 'pipeline',
    metrics: { clean: 3, corrupted: 0.5, empty: 0.5, circuit: 3, normalized: 1 },
    pipeline: { prune: { kept: 99, rescued: [] } },
  };
  return file;
}

function pageData(html: string): ReportData {
  const m = /<script type="application\/json" id="circuitry-data">([\s\S]*?)<\/script>/.exec(html);
  return JSON.parse(m![1]) as ReportData;
}

describe('a report of an empty circuit, or of meta that disagrees with the edges', () => {
  it('says "Empty circuit" over the drawing when no edge is in the circuit', () => {
    const html = renderReport(circuit(0));
    expect(html).toContain('id="graph-empty"');
    expect(html).toMatch(/<b>Empty circuit<\/b><span>No edge of this file has in_graph: true/);
    expect(pageData(html).circuit).toMatchObject({ edges: 0, nodes: 0 });
    // a circuit with edges draws them: no message
    expect(renderReport(plantedCircuit())).not.toContain('id="graph-empty"');
  });

  it('recomputes edge and node counts from in_graph and names each field of meta that disagrees', () => {
    const empty = buildReportData(circuit(0)).circuit;
    expect(empty.totalEdges).toBe(Object.keys(circuit(0).edges).length);
    expect(empty.warnings).toEqual([
      'meta.pipeline says the circuit has 99 edges, but 0 edges have in_graph: true',
      'meta.metrics.normalized is 1.00, but no edge is in the circuit (an empty circuit recovers 0)',
      'meta.metrics.circuit (3.000) differs from meta.metrics.empty (0.5000), but no edge is in the circuit',
    ]);

    const some = circuit(10);
    const kept = Object.values(some.edges).filter((e) => e.in_graph).length;
    const ends = new Set(Object.entries(some.edges).filter(([, e]) => e.in_graph).flatMap(([n]) => n.replace(/<[qkv]>$/, '').split('->')));
    const idle = ['a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1'].find((n) => !ends.has(n))!;
    expect(idle).toBeDefined();
    some.nodes = { [idle]: { in_graph: true }, input: { in_graph: false } };
    const c = buildReportData(some).circuit;
    expect(c.edges).toBe(kept);
    expect(c.nodes).toBe(ends.size);
    expect(ends.has('input')).toBe(true);
    expect(c.warnings).toEqual([
      `meta.pipeline says the circuit has 99 edges, but ${kept} edges have in_graph: true`,
      `node ${idle} is flagged in_graph but no in-graph edge touches it`,
      'node input is flagged in_graph: false but in-graph edges touch it',
    ]);
    // the panel is there even without meta.metrics when something disagrees
    expect(renderReport(some)).toContain('id="panel-metrics"');

    // a consistent pipeline circuit: counts, no warnings
    some.meta = { ...some.meta, pipeline: { prune: { kept, rescued: [] } } };
    some.nodes = {};
    expect(buildReportData(some).circuit.warnings).toEqual([]);
  });
});

const HAVE = chromiumAvailable();
describe.skipIf(!HAVE && !process.env.CI)('the empty-circuit report in headless chromium', () => {
  let browser: Browser;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-empty-'));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows the message, the recomputed counts and the disagreements', async () => {
    const path = join(dir, 'empty.html');
    writeFileSync(path, renderReport(circuit(0)));
    const { page, log } = await openPage(browser);
    await loadReport(page, path);
    expect(await page.isVisible('#graph-empty')).toBe(true);
    expect(await page.textContent('#graph-empty')).toContain('Empty circuit');
    const metrics = (await page.textContent('#metrics')) ?? '';
    expect(metrics).toMatch(/Edges in circuit\s*0 of \d+/);
    expect(metrics).toMatch(/Nodes in circuit\s*0/);
    expect(metrics).toContain('The file disagrees with its edges');
    expect(metrics).toContain('meta.pipeline says the circuit has 99 edges, but 0 edges have in_graph: true');
    expect(log.errors).toEqual([]);
    await page.close();
  });
});
