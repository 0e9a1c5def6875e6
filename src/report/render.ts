import { createHash } from 'node:crypto';
import type { CircuitFile } from '../graph/circuit-types.js';
import { clientBundle, liveClientBundle } from './bundle.js';
import { buildComparisonData, buildReportData, type CompareInput, type ReportOptions } from './data.js';
import { PALETTE, PORT_DASH } from './palette.js';
import { STYLES } from './styles.js';
import type { ComparisonData, PageData, ReportData } from './types.js';
import { LIVE_IDS, type LivePayload } from './live-types.js';

export type { CompareInput, ReportOptions } from './data.js';

/**
 * One self-contained HTML document: the page skeleton (static text only), the data as JSON in a
 * non-executed script element, and the bundled client that fills the page. Data never enters
 * the markup: the client shows every string through textContent.
 */

/** JSON that cannot end its script element or open a comment there: <, >, & and the JS line separators escaped. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A live page's extra elements: its data as JSON and the binaries as base64 (neither is executed). */
function liveElements(live: LivePayload): string {
  const blobs = Object.entries(live.blobs).map(([id, b64]) => `<script type="application/octet-stream" id="${escapeHtml(id)}">${b64.replace(/[^A-Za-z0-9+/=]/g, '')}</script>`);
  return [`<script type="application/json" id="${LIVE_IDS.data}">${safeJson(live.data)}</script>`, ...blobs].join('\n');
}

function page(data: PageData, body: string, live?: LivePayload): string {
  const script = live ? liveClientBundle() : clientBundle();
  const hash = createHash('sha256').update(script, 'utf8').digest('base64');
  // Only the bundled client may run: no other inline script, no event-handler attributes, no network.
  const csp = [
    "default-src 'none'",
    // live pages compile tfjs' wasm (fetched from a blob: URL made from the inlined bytes)
    `script-src 'sha256-${hash}'${live ? " 'wasm-unsafe-eval'" : ''}`,
    ...(live ? ['connect-src blob:'] : []),
    "style-src 'unsafe-inline'",
    'img-src data: blob:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="circuitry">
<title>${escapeHtml(data.title)} — circuitry</title>
<style>${STYLES}</style>
</head>
<body>
${body}
<script type="application/json" id="circuitry-data">${safeJson(data)}</script>
${live ? `${liveElements(live)}\n` : ''}<script>${script}</script>
</body>
</html>
`;
}

function header(): string {
  return `<header class="top">
  <div><h1 id="title"></h1><p id="subtitle" class="muted"></p></div>
  <div class="brand"><span class="brand-mark"></span>circuitry</div>
</header>`;
}

function lineSample(color: string, dash: [number, number] | null, width = 2): string {
  const d = dash ? ` stroke-dasharray="${dash[0]} ${dash[1]}"` : '';
  return `<svg width="26" height="8" aria-hidden="true"><line x1="1" y1="4" x2="25" y2="4" stroke="${color}" stroke-width="${width}"${d}/></svg>`;
}

function nodeLegend(): string {
  const n = PALETTE.node;
  return [
    ['input', n.input],
    ['attention head', n.head],
    ['MLP', n.mlp],
    ['logits', n.logits],
  ]
    .map(([label, color]) => `<span><i class="dot" style="background:${color}"></i>${label}</span>`)
    .join('');
}

function reportLegend(qkv: boolean): string {
  const edges = `<span>${lineSample(PALETTE.positive, null, 3)}score &gt; 0</span><span>${lineSample(PALETTE.negative, null, 3)}score &lt; 0</span>`;
  const ports = qkv
    ? `<i class="sep"></i><span>${lineSample(PALETTE.muted, PORT_DASH.q)}q</span><span>${lineSample(PALETTE.muted, PORT_DASH.k)}k</span><span>${lineSample(PALETTE.muted, PORT_DASH.v)}v</span>`
    : '';
  return `<div class="legend" id="legend">${nodeLegend()}<i class="sep"></i>${edges}${ports}<span class="legend-note">width ∝ √|score|</span></div>`;
}

function section(id: string, title: string, inner: string, cls = ''): string {
  return `<section class="card ${cls}" id="${id}"><h2>${title}</h2>${inner}</section>`;
}

/** Shown over the drawing when no edge is in the circuit (static text: no file data in the markup). */
const EMPTY_CIRCUIT = `
      <div id="graph-empty" class="graph-empty" role="status"><b>Empty circuit</b><span>No edge of this file has in_graph: true, so the circuit has nothing to draw. Tick “all edges” and lower the threshold to browse the edges by score.</span></div>`;

function reportBody(d: ReportData): string {
  const hasTau = d.acdcTau !== null || d.edges.tauState.some((s) => s !== 0);
  const qkv = d.edges.port.some((p) => p !== 0);
  const modeOptions = `<option value="score">|attribution score|</option>${hasTau ? '<option value="tau">ACDC τ</option>' : ''}`;
  const side: string[] = [section('panel-details', 'Selection', '<div id="details"><p class="muted">Hover a node or edge for details; click to pin it and highlight its inputs and outputs.</p></div>')];
  if (d.metrics || d.circuit.warnings.length) side.push(section('panel-metrics', 'Metrics', '<div id="metrics"></div>'));
  if (d.summary.length || d.versions.length || d.timings.length || d.config) side.push(section('panel-summary', 'Run', '<div id="summary"></div>'));
  const panels: string[] = [];
  if (d.faithfulness) panels.push(section('panel-faithfulness', 'Faithfulness', '<div id="faithfulness"></div>'));
  panels.push(section('panel-top-edges', 'Top edges', '<div id="top-edges"></div>', d.faithfulness ? '' : 'wide'));
  if (d.sweeps.length) panels.push(section('panel-sweeps', 'Activation-patching sweeps', '<div id="sweeps" class="sweeps"></div>', 'wide'));
  if (d.examples.length) panels.push(section('panel-examples', 'Example prompts', '<div id="examples"></div>', 'wide'));
  return `${header()}
<main class="layout">
  <section class="card graph-card" id="panel-graph">
    <div class="toolbar">
      <select id="threshold-mode" aria-label="filter edges by" title="filter edges by">${modeOptions}</select>
      <span class="threshold"><input type="range" id="threshold" min="0" max="0" step="1" value="0" aria-label="threshold"><span id="threshold-value" class="threshold-value"></span></span>
      <span id="edge-count" class="edge-count" data-edge-count="0" aria-live="polite"></span>
      <label title="let lower thresholds add edges that are not in the saved circuit"><input type="checkbox" id="scope-all"> all edges</label>
      <span class="spacer"></span>
      <input id="search" type="search" placeholder="Search…" title="find a node or edge by name" list="search-list" aria-label="search by name" autocomplete="off"><datalist id="search-list"></datalist>
      <div class="seg" role="group" aria-label="layout"><button type="button" id="layout-layered" aria-pressed="true">Layered</button><button type="button" id="layout-force" aria-pressed="false">Force</button></div>
    </div>
    <div class="graph-wrap">
      <div id="graph" class="graph"></div>
      <div id="tooltip" class="tooltip" hidden></div>${d.circuit.edges === 0 ? EMPTY_CIRCUIT : ''}
    </div>
    ${reportLegend(qkv)}
  </section>
  <aside class="side">${side.join('\n')}</aside>
</main>
<div class="panels">${panels.join('\n')}</div>
<footer>Interactive circuit report generated by circuitry. Scroll to zoom, drag to pan; the file works offline.</footer>`;
}

function compareBody(d: ComparisonData): string {
  const share = (color: string, label: string): string => `<span><i class="dot" style="background:${color}"></i>${lineSample(color, null, 3)}${label}</span>`;
  const legend = `<div class="legend">${share(PALETTE.sharedAll, 'in every circuit')}${d.circuits.length > 2 ? share(PALETTE.sharedSome, 'in some') : ''}${share(PALETTE.unique, 'only in this one')}<span class="legend-note">nodes and edges · width ∝ √|score|</span></div>`;
  const drawings = d.circuits
    .map(
      (_, i) => `<section class="card graph-card" id="panel-circuit-${i}">
    <div class="toolbar"><div class="circuit-head"><h3 class="circuit-name" id="circuit-name-${i}"></h3><span class="muted circuit-sub" id="circuit-sub-${i}"></span></div></div>
    <div class="graph-wrap"><div id="graph-${i}" class="graph graph-sm"></div><div id="tooltip-${i}" class="tooltip" hidden></div></div>${legend}
  </section>`,
    )
    .join('\n');
  return `${header()}
<div class="compare-grid">${drawings}</div>
<div class="panels">
  ${section('panel-overlap', 'Shared and unique', '<div id="overlap"></div>', 'wide')}
  ${section('panel-iou-edges', 'Edge IoU', '<div id="iou-edges"></div>')}
  ${section('panel-iou-nodes', 'Node IoU', '<div id="iou-nodes"></div>')}
</div>
<footer>Circuit comparison generated by circuitry. IoU = |A ∩ B| / |A ∪ B| over in-graph edges (or nodes).</footer>`;
}

/** The interactive report of one circuit as a self-contained HTML document. */
export function renderReport(file: CircuitFile, opts: ReportOptions = {}): string {
  const data = buildReportData(file, opts);
  return page(data, reportBody(data));
}

/** A comparison page of two or more circuits (shared and unique parts, IoU matrices, drawings). */
export function renderComparison(files: readonly CompareInput[]): string {
  const data = buildComparisonData(files);
  return page(data, compareBody(data));
}

/** The report with live patching (`circuitry report --live`): the same page, plus the model and data to re-run the circuit. */
export function renderLiveReport(file: CircuitFile, live: LivePayload, opts: ReportOptions = {}): string {
  const data = buildReportData(file, opts);
  return page(data, reportBody(data), live);
}

/** The comparison page with live patching of the union, the intersection and each circuit alone. */
export function renderLiveComparison(files: readonly CompareInput[], live: LivePayload): string {
  const data = buildComparisonData(files);
  return page(data, compareBody(data), live);
}
