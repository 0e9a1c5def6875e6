import { PALETTE } from '../palette.js';
import { PORTS, TAU_FALLS, TAU_KEPT, type ReportData } from '../types.js';
import { byId, el } from './dom.js';
import { fmt, fmtCount, fmtSigned } from './format.js';
import { GraphView, type Selection } from './graph-view.js';
import { renderExamples, renderFaithfulness, renderMetrics, renderSummary, renderSweeps, renderTopEdges } from './panels.js';
import { ThresholdModel, type ThresholdState } from './threshold.js';

/**
 * The one-circuit report: the drawing, its threshold control, search and details, and the
 * panels. Exposes a small read-only API on window.__circuitry for tests and scripting.
 */

function badge(text: string, cls = ''): HTMLSpanElement {
  return el('span', { class: `badge ${cls}`, text });
}

function portSuffix(p: number): string {
  return PORTS[p] ? ` <${PORTS[p]}>` : '';
}

/**
 * Optional hooks for the live report (client/live.ts); a plain report passes none. The drawn
 * edges are then the threshold's edges as `visible` edits them, and `onDrawn` hears each change.
 */
export interface ReportHooks {
  visible?(thresholdMask: Uint8Array): Uint8Array;
  onDrawn?(drawn: Uint8Array): void;
  /** Called once the page is built: the drawing, a redraw, and a return to the saved circuit. */
  attach?(ctx: { view: GraphView; redraw(): void; resetThreshold(): void }): void;
}

export function startReport(d: ReportData, hooks: ReportHooks = {}): void {
  const t0 = performance.now();
  document.title = `${d.title} — circuitry`;
  byId('title')!.textContent = d.title;
  byId('subtitle')!.textContent = d.subtitle;
  const E = d.edges;
  const model = new ThresholdModel(d);
  let maxAbs = 0;
  for (const s of E.score) if (s !== null) maxAbs = Math.max(maxAbs, Math.abs(s));

  const edgeLook = (i: number): { color: string; size: number } => {
    const s = E.score[i];
    const rel = maxAbs > 0 && s !== null ? Math.sqrt(Math.abs(s) / maxAbs) : 0;
    return { color: s !== null && s < 0 ? PALETTE.negative : PALETTE.positive, size: 0.8 + 4.2 * rel };
  };

  const tauText = (i: number): string => (E.tauState[i] === TAU_KEPT ? 'kept at every τ' : E.tauState[i] === TAU_FALLS ? fmt(E.tau[i]) : '—');

  // Details of a node or an edge: compact for the tooltip, with clickable neighbours in the panel.
  const describe = (sel: NonNullable<Selection>, full: boolean): Node => {
    const box = el('div');
    if (sel.kind === 'edge') {
      const i = sel.index;
      box.append(el('div', { class: 'item-title', text: E.name[i] }), E.inGraph[i] ? badge('in circuit', 'in') : badge('not in circuit'));
      box.append(
        el(
          'dl',
          { class: 'kv' },
          el('dt', { text: 'Attribution' }),
          el('dd', { text: fmtSigned(E.score[i]), class: (E.score[i] ?? 0) < 0 ? 'neg' : 'pos' }),
          el('dt', { text: 'Verified effect' }),
          el('dd', { text: fmtSigned(E.verified[i]) }),
          el('dt', { text: 'ACDC τ' }),
          el('dd', { text: tauText(i) }),
          ...(E.acdcDelta[i] !== null ? [el('dt', { text: 'ACDC Δ' }), el('dd', { text: fmtSigned(E.acdcDelta[i]) })] : []),
          el('dt', { text: 'Drawn' }),
          el('dd', { text: view.isVisible(i) ? 'yes' : 'no (below threshold)' }),
        ),
      );
      const nb = el('div', { class: 'neighbours' }, el('h3', { text: 'Endpoints' }));
      const chips = el('div', { class: 'chips' });
      for (const n of [E.src[i], E.dst[i]]) chips.append(nodeChip(n, full));
      nb.append(chips);
      box.append(nb);
      return box;
    }
    const n = d.nodes[sel.index];
    const { inputs, outputs } = view.neighbourEdges(sel.index);
    const kind = { input: 'embeddings', head: 'attention head', mlp: 'MLP', logits: 'logits' }[n.kind];
    box.append(el('div', { class: 'item-title', text: n.name }), badge(kind), ...(n.inGraph ? [badge('in circuit', 'in')] : []));
    const rows: Node[] = [];
    if (n.kind === 'head' || n.kind === 'mlp') rows.push(el('dt', { text: 'Layer' }), el('dd', { text: String(n.layer) }));
    if (n.kind === 'head') rows.push(el('dt', { text: 'Head' }), el('dd', { text: String(n.head) }));
    if (n.score !== null) rows.push(el('dt', { text: 'Score' }), el('dd', { text: fmtSigned(n.score) }));
    rows.push(el('dt', { text: 'Drawn inputs' }), el('dd', { text: String(inputs.length) }), el('dt', { text: 'Drawn outputs' }), el('dd', { text: String(outputs.length) }));
    box.append(el('dl', { class: 'kv' }, ...rows));
    const limit = full ? 60 : 8;
    const list = (title: string, edges: number[], pick: (e: number) => number, suffix: (e: number) => string): void => {
      if (!edges.length) return;
      const sorted = [...edges].sort((a, b) => Math.abs(E.score[b] ?? 0) - Math.abs(E.score[a] ?? 0));
      const chips = el('div', { class: 'chips' });
      for (const e of sorted.slice(0, limit)) chips.append(edgeChip(e, `${d.nodes[pick(e)].name}${suffix(e)}`, full));
      if (sorted.length > limit) chips.append(el('span', { class: 'muted', text: `+${sorted.length - limit} more` }));
      box.append(el('div', { class: 'neighbours' }, el('h3', { text: title }), chips));
    };
    list('Inputs from', inputs, (e) => E.src[e], (e) => portSuffix(E.port[e]));
    list('Outputs to', outputs, (e) => E.dst[e], (e) => portSuffix(E.port[e]));
    return box;
  };

  const nodeChip = (n: number, clickable: boolean): HTMLElement => {
    if (!clickable) return el('span', { class: 'chip', text: d.nodes[n].name });
    const b = el('button', { class: 'chip', text: d.nodes[n].name, attrs: { type: 'button' } });
    b.addEventListener('click', () => view.select({ kind: 'node', index: n }, true));
    return b;
  };
  const edgeChip = (e: number, label: string, clickable: boolean): HTMLElement => {
    const title = `${E.name[e]}: ${fmtSigned(E.score[e])}`;
    if (!clickable) return el('span', { class: 'chip', text: label, title });
    const b = el('button', { class: 'chip', text: label, title, attrs: { type: 'button' } });
    b.addEventListener('click', () => view.select({ kind: 'edge', index: e }, true));
    return b;
  };

  const details = byId('details')!;
  const detailsIdle = details.firstElementChild?.cloneNode(true) ?? null;
  const showDetails = (sel: Selection): void => {
    details.replaceChildren(sel ? describe(sel, true) : (detailsIdle?.cloneNode(true) ?? ''));
  };

  const view = new GraphView({
    container: byId('graph')!,
    tooltip: byId('tooltip')!,
    cfg: d.cfg,
    nodes: d.nodes,
    edges: E.name.map((_, i) => ({ src: E.src[i], dst: E.dst[i], port: E.port[i] })),
    edgeLook,
    nodeColor: (i) => PALETTE.node[d.nodes[i].kind],
    describe: (sel) => describe(sel, false),
    onSelect: showDetails,
  });

  // Threshold control
  const modeSel = byId<HTMLSelectElement>('threshold-mode')!;
  const slider = byId<HTMLInputElement>('threshold')!;
  const valueEl = byId('threshold-value')!;
  const countEl = byId('edge-count')!;
  const scopeBox = byId<HTMLInputElement>('scope-all')!;
  const state: ThresholdState = { mode: 'score', scopeAll: false, position: 0, threshold: 0, count: 0, candidates: 0 };
  let stops: number[] = [0];

  const apply = (): void => {
    state.position = Number(slider.value);
    state.threshold = stops[Math.min(stops.length - 1, Math.max(0, state.position))];
    const base = model.mask(state.mode, state.threshold, state.scopeAll);
    const drawn = hooks.visible ? hooks.visible(base) : base;
    state.count = view.setVisible(drawn);
    valueEl.textContent = state.mode === 'score' ? `|score| ≥ ${fmt(state.threshold, 3)}` : `τ = ${fmt(state.threshold, 3)}`;
    countEl.textContent = `${fmtCount(state.count)} of ${fmtCount(state.candidates)} edges`;
    countEl.dataset.edgeCount = String(state.count);
    const sel = view.getSelection();
    if (sel) showDetails(sel);
    hooks.onDrawn?.(drawn);
  };

  /** Re-reads mode and scope; keeps the threshold value where possible, else uses the saved circuit's. */
  const configure = (initial: boolean): void => {
    const previous = initial ? null : state.mode === modeSel.value ? state.threshold : null;
    state.mode = modeSel.value === 'tau' ? 'tau' : 'score';
    state.scopeAll = scopeBox.checked;
    state.candidates = model.candidates(state.scopeAll);
    let target = previous;
    if (target === null) {
      if (state.mode === 'tau') target = d.acdcTau ?? 0;
      else {
        // the loosest threshold that still draws every edge of the saved circuit
        let minIn = Number.POSITIVE_INFINITY;
        for (let i = 0; i < E.name.length; i++) if (E.inGraph[i]) minIn = Math.min(minIn, Math.abs(E.score[i] ?? 0));
        target = Number.isFinite(minIn) ? minIn : 0;
      }
    }
    stops = model.stops(state.mode, state.scopeAll, [target]);
    let pos = 0;
    for (let i = 0; i < stops.length; i++) if (stops[i] <= target) pos = i;
    slider.max = String(stops.length - 1);
    slider.value = String(pos);
    apply();
  };

  let pending = 0;
  slider.addEventListener('input', () => {
    if (pending) cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      pending = 0;
      apply();
    });
  });
  slider.addEventListener('change', apply);
  modeSel.addEventListener('change', () => configure(false));
  scopeBox.addEventListener('change', () => configure(false));

  // Layout switch
  const layered = byId<HTMLButtonElement>('layout-layered')!;
  const force = byId<HTMLButtonElement>('layout-force')!;
  const setLayout = (name: 'layered' | 'force'): void => {
    view.setLayout(name);
    layered.setAttribute('aria-pressed', String(name === 'layered'));
    force.setAttribute('aria-pressed', String(name === 'force'));
  };
  layered.addEventListener('click', () => setLayout('layered'));
  force.addEventListener('click', () => setLayout('force'));

  // Search by node or edge name
  const search = byId<HTMLInputElement>('search')!;
  const list = byId('search-list')!;
  for (const n of d.nodes) list.append(el('option', { attrs: { value: n.name } }));
  const nodeIndex = new Map(d.nodes.map((n, i) => [n.name, i]));
  const edgeIndex = new Map(E.name.map((n, i) => [n, i]));
  const find = (q: string): Selection => {
    const s = q.trim();
    if (!s) return null;
    if (nodeIndex.has(s)) return { kind: 'node', index: nodeIndex.get(s)! };
    if (edgeIndex.has(s)) return { kind: 'edge', index: edgeIndex.get(s)! };
    const lower = s.toLowerCase();
    const node = d.nodes.findIndex((n) => n.name.toLowerCase().startsWith(lower));
    if (node >= 0) return { kind: 'node', index: node };
    const edge = E.name.findIndex((n) => n.toLowerCase().includes(lower));
    return edge >= 0 ? { kind: 'edge', index: edge } : null;
  };
  const runSearch = (): void => {
    const sel = find(search.value);
    search.setCustomValidity(sel || !search.value.trim() ? '' : 'no node or edge with that name');
    search.style.borderColor = sel || !search.value.trim() ? '' : PALETTE.negative;
    if (sel) view.select(sel, true);
  };
  search.addEventListener('change', runSearch);
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') runSearch();
  });

  // Panels
  const metrics = byId('metrics');
  if (metrics) renderMetrics(metrics, d.metrics, d.circuit);
  const summary = byId('summary');
  if (summary) renderSummary(summary, d);
  const faith = byId('faithfulness');
  if (faith && d.faithfulness) renderFaithfulness(faith, d.faithfulness);
  const sweeps = byId('sweeps');
  if (sweeps) renderSweeps(sweeps, d.sweeps);
  const top = byId('top-edges');
  if (top) {
    renderTopEdges(top, d, (i) => {
      view.select({ kind: 'edge', index: i }, true);
      byId('panel-graph')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
    });
  }
  const examples = byId('examples');
  if (examples) renderExamples(examples, d.examples);

  configure(true);
  hooks.attach?.({
    view,
    redraw: apply,
    resetThreshold: () => {
      modeSel.selectedIndex = 0;
      scopeBox.checked = false;
      configure(true);
    },
  });
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => view.resize(), 150);
  });

  const api = {
    ready: true,
    kind: 'report' as const,
    renderMs: performance.now() - t0,
    state: (): ThresholdState => ({ ...state }),
    edgeCount: (): number => state.count,
    renderedEdgeCount: (): number => view.renderedEdgeCount(),
    nodePosition: (name: string): { x: number; y: number } | null => view.nodeViewportPosition(name),
    layout: (): string => view.getLayout(),
    selection: (): Selection => view.getSelection(),
  };
  (window as unknown as { __circuitry: typeof api }).__circuitry = api;
}
