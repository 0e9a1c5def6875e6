import type { PerPrompt } from '../../discovery/live.js';
import type { LiveData } from '../live-types.js';
import type { ReportData } from '../types.js';
import { el } from './dom.js';
import { fmt, fmtCount, fmtPct } from './format.js';
import type { GraphView } from './graph-view.js';
import { LiveEngine, type TimedResult } from './live-engine.js';
import type { ReportHooks } from './report-page.js';

/**
 * Live patching on the one-circuit report. The circuit evaluated is the drawn one: the
 * threshold's edges (the saved circuit by default; the τ slider moves it) with the user's
 * toggles applied (an edge clicked on or off, a node switched off with all its edges). Every
 * change re-runs the masked forward through window.circuitryLive.evaluate, the API below.
 */

/** The page's JavaScript API (documented in docs/live-report.md). */
export interface CircuitryLive {
  /** True once the model is loaded and the discovered circuit evaluated. */
  ready: boolean;
  /** Why loading failed, if it did. */
  error: string | null;
  /** The tfjs backend that loaded: 'wasm (SIMD)', 'wasm', 'webgl' or 'cpu'. */
  backend: string | null;
  metric: string;
  /** The metric of the full model and of the empty circuit, per dataset. */
  full(dataset?: number): number;
  empty(dataset?: number): number;
  /** The circuit of exactly these edges: its metric and normalized faithfulness, as `circuitry evaluate` computes them. */
  evaluate(edgeNames: readonly string[], dataset?: number): Promise<TimedResult>;
  /** The edges of the circuit the page shows now, and the result shown for it (null while computing). */
  current(): string[];
  shown(): (TimedResult & { edges: string[] }) | null;
}

declare global {
  interface Window {
    circuitryLive?: CircuitryLive;
  }
}

export const LIVE_STYLES = /* css */ `
.live-card .kv dd { font-variant-numeric: tabular-nums; }
.live-big { font-size: 22px; font-weight: 600; }
.live-row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 10px 0; }
.live-row input[type=text] { flex: 1; min-width: 0; border: 1px solid var(--border); border-radius: 7px; padding: 4px 8px; }
.live-row button, .live-card select { border: 1px solid var(--border); border-radius: 7px; padding: 4px 10px; background: #fff; cursor: pointer; }
.live-card select { width: 100%; }
.live-prompt-text { font-family: var(--mono); font-size: 12px; white-space: pre-wrap; word-break: break-word; margin: 8px 0; }
.live-table-wrap { max-height: 360px; overflow: auto; }
.live-table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
.live-table th, .live-table td { padding: 3px 8px; border-bottom: 1px solid var(--border); text-align: right; font-variant-numeric: tabular-nums; }
.live-table td.text, .live-table th.text { text-align: left; font-family: var(--mono); max-width: 520px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.live-table tr.picked { background: #eef2ff; }
.live-table tbody tr { cursor: pointer; }
.live-error { color: var(--neg); }
`;

export function installStyles(): void {
  document.head.append(el('style', { text: LIVE_STYLES }));
}

export function readLiveData(id: string): LiveData {
  const node = document.getElementById(id);
  if (!node?.textContent) throw new Error(`circuitry live: the page holds no #${id} element`);
  return JSON.parse(node.textContent) as LiveData;
}

function kv(rows: [string, HTMLElement][]): HTMLElement {
  return el('dl', { class: 'kv' }, ...rows.flatMap(([label, dd]) => [el('dt', { text: label }), dd]));
}

function value(id: string, cls = ''): HTMLElement {
  return el('dd', { class: cls, text: '—', attrs: { id } });
}

/** Shows a number and keeps its exact value in data-value (tests and scripts read it). */
export function setValue(node: HTMLElement, x: number | null, text?: string): void {
  node.textContent = text ?? fmt(x);
  if (x === null) delete node.dataset.value;
  else node.dataset.value = String(x);
}

/** Live patching on a report page: returns the hooks startReport takes. */
export function liveReport(d: ReportData, live: LiveData): ReportHooks {
  installStyles();
  const E = d.edges;
  const nEdges = E.name.length;
  const edgeIndex = new Map(E.name.map((n, i) => [n, i]));
  const nodeEdges: number[][] = d.nodes.map(() => []);
  for (let i = 0; i < nEdges; i++) {
    nodeEdges[E.src[i]].push(i);
    nodeEdges[E.dst[i]].push(i);
  }
  const circuit = live.circuits[0];
  const dataset = live.datasets[circuit.dataset];

  // The user's edits on top of the threshold: edges forced on or off, nodes switched off.
  const forced = new Map<number, 0 | 1>();
  const nodesOff = new Set<number>();
  let drawn = new Uint8Array(nEdges);
  let ctx: { view: GraphView; redraw(): void; resetThreshold(): void } | null = null;

  // ---- the panel -------------------------------------------------------------------------
  const status = el('p', { class: 'muted', text: `Loading ${live.model} (${(live.weightBytes / 2 ** 20).toFixed(2)} MB of weights)…`, attrs: { id: 'live-status' } });
  const out = {
    metric: value('live-metric', 'live-big'),
    normalized: value('live-normalized'),
    full: value('live-full'),
    empty: value('live-empty'),
    edges: value('live-edges'),
    time: value('live-time'),
  };
  const reset = el('button', { text: 'Reset to discovered circuit', attrs: { type: 'button', id: 'live-reset' } });
  const clickToggles = el('input', { attrs: { type: 'checkbox', id: 'live-click', checked: true } });
  const edgeInput = el('input', { attrs: { type: 'text', id: 'live-edge', list: 'live-edge-list', placeholder: 'edge or node name', autocomplete: 'off', 'aria-label': 'edge or node to toggle' } });
  const edgeList = el('datalist', { attrs: { id: 'live-edge-list' } });
  for (const n of d.nodes) edgeList.append(el('option', { attrs: { value: n.name } }));
  for (const n of E.name) edgeList.append(el('option', { attrs: { value: n } }));
  const edgeToggle = el('button', { text: 'Toggle', attrs: { type: 'button', id: 'live-toggle' } });
  const changes = el('div', { class: 'chips', attrs: { id: 'live-changes' } });
  const promptSel = el('select', { attrs: { id: 'live-prompt', 'aria-label': 'prompt' } });
  dataset.text.forEach((t, i) => promptSel.append(el('option', { text: `${i + 1}. ${t.clean}`, attrs: { value: i } })));
  const promptText = el('div', { class: 'live-prompt-text', attrs: { id: 'live-prompt-text' } });
  const pOut = { full: value('live-prompt-full'), circuit: value('live-prompt-circuit'), empty: value('live-prompt-empty') };
  const panel = el(
    'section',
    { class: 'card live-card', attrs: { id: 'panel-live', 'data-busy': '1' } },
    el('h2', { text: 'Live patching' }),
    status,
    kv([
      [`Circuit ${live.metric}`, out.metric],
      ['Normalized faithfulness', out.normalized],
      [`Full model`, out.full],
      [`Empty circuit`, out.empty],
      ['Edges', out.edges],
      ['Recompute', out.time],
    ]),
    el('div', { class: 'live-row' }, reset, el('label', {}, clickToggles, ' click toggles')),
    el('div', { class: 'live-row' }, edgeInput, edgeList, edgeToggle),
    changes,
    el('h3', { text: 'Prompt' }),
    promptSel,
    promptText,
    kv([
      ['Logit diff, full model', pOut.full],
      ['Logit diff, circuit', pOut.circuit],
      ['Logit diff, empty circuit', pOut.empty],
    ]),
  );
  const side = document.querySelector('.side');
  side?.prepend(panel);

  const tableBody = el('tbody');
  const table = el(
    'table',
    { class: 'live-table', attrs: { id: 'live-per-prompt' } },
    el('thead', {}, el('tr', {}, el('th', { text: '#' }), el('th', { class: 'text', text: 'clean prompt' }), el('th', { text: 'full' }), el('th', { text: 'circuit' }), el('th', { text: 'empty' }))),
    tableBody,
  );
  const perPanel = el('section', { class: 'card wide', attrs: { id: 'panel-live-prompts' } }, el('h2', { text: `Live: ${live.metric} per prompt` }), el('div', { class: 'live-table-wrap' }, table));
  document.querySelector('.panels')?.prepend(perPanel);

  // ---- state and recomputation -----------------------------------------------------------
  let engine: LiveEngine | null = null;
  let shown: (TimedResult & { edges: string[] }) | null = null;
  let wanted: string[] = [];
  let running = false;

  const drawnNames = (): string[] => {
    const names: string[] = [];
    for (let i = 0; i < nEdges; i++) if (drawn[i]) names.push(E.name[i]);
    return names;
  };

  const showPrompt = (): void => {
    const i = Number(promptSel.value) || 0;
    const t = dataset.text[i];
    promptText.replaceChildren(
      el('div', { text: `clean: ${t.clean}` }),
      el('div', { text: `corrupted: ${t.corrupted}` }),
      el('div', { text: `answer: ${t.answer} · wrong: ${t.wrong}` }),
    );
    if (!engine) return;
    setValue(pOut.full, engine.full(circuit.dataset).perPrompt.logitDiff[i]);
    setValue(pOut.empty, engine.empty(circuit.dataset).perPrompt.logitDiff[i]);
    setValue(pOut.circuit, shown ? shown.perPrompt.logitDiff[i] : null);
    for (const [r, row] of Array.from(tableBody.children).entries()) row.classList.toggle('picked', r === i);
  };

  const fillTable = (full: PerPrompt, empty: PerPrompt, now: PerPrompt | null): void => {
    if (tableBody.children.length !== dataset.text.length) {
      tableBody.replaceChildren(
        ...dataset.text.map((t, i) => {
          const row = el('tr', {}, el('td', { text: String(i + 1) }), el('td', { class: 'text', text: t.clean, title: t.clean }), el('td'), el('td'), el('td'));
          row.addEventListener('click', () => {
            promptSel.value = String(i);
            showPrompt();
          });
          return row;
        }),
      );
    }
    Array.from(tableBody.children).forEach((row, i) => {
      const cells = row.children;
      cells[2].textContent = fmt(full.metric[i]);
      cells[3].textContent = now ? fmt(now.metric[i]) : '…';
      cells[4].textContent = fmt(empty.metric[i]);
    });
  };

  const recompute = async (): Promise<void> => {
    if (!engine || running) return;
    running = true;
    panel.dataset.busy = '1';
    try {
      while (true) {
        const edges = wanted;
        const r = await api.evaluate(edges, circuit.dataset);
        if (edges !== wanted) continue; // superseded while computing: run the latest
        shown = { ...r, edges };
        setValue(out.metric, r.metric);
        setValue(out.normalized, r.normalized, `${fmt(r.normalized)} (${fmtPct(r.normalized)})`);
        setValue(out.edges, r.nEdges, `${fmtCount(r.nEdges)} of ${fmtCount(nEdges)}`);
        setValue(out.time, r.ms, `${Math.round(r.ms)} ms · ${dataset.text.length} prompts`);
        fillTable(engine.full(circuit.dataset).perPrompt, engine.empty(circuit.dataset).perPrompt, r.perPrompt);
        showPrompt();
        break;
      }
    } catch (err) {
      status.className = 'live-error';
      status.textContent = `Evaluation failed: ${err instanceof Error ? err.message : String(err)}`;
      console.error(err);
    } finally {
      running = false;
      panel.dataset.busy = '0';
    }
    if (shown && shown.edges !== wanted) void recompute();
  };

  const request = (): void => {
    wanted = drawnNames();
    shown = null;
    panel.dataset.busy = '1';
    out.time.textContent = 'computing…';
    void recompute();
  };

  const renderChanges = (): void => {
    const chips: HTMLElement[] = [];
    const chip = (label: string, title: string, undo: () => void): HTMLElement => {
      const b = el('button', { class: 'chip', text: label, title, attrs: { type: 'button' } });
      b.addEventListener('click', () => {
        undo();
        edited();
      });
      return b;
    };
    for (const n of nodesOff) chips.push(chip(`− ${d.nodes[n].name} (node)`, 'switched off: click to restore', () => nodesOff.delete(n)));
    for (const [i, v] of forced) chips.push(chip(`${v ? '+' : '−'} ${E.name[i]}`, v ? 'added: click to undo' : 'removed: click to undo', () => forced.delete(i)));
    changes.replaceChildren(...(chips.length ? chips : [el('span', { class: 'muted', text: 'No edits: the circuit is the threshold’s edges.' })]));
  };

  const edited = (): void => {
    renderChanges();
    ctx?.redraw();
  };

  const toggleEdge = (i: number): void => {
    forced.set(i, drawn[i] ? 0 : 1);
    edited();
  };
  const toggleNode = (n: number): void => {
    if (nodesOff.has(n)) nodesOff.delete(n);
    else nodesOff.add(n);
    edited();
  };
  const nodeIndex = new Map(d.nodes.map((n, i) => [n.name, i]));
  const toggleByName = (): void => {
    const name = edgeInput.value.trim();
    const e = edgeIndex.get(name);
    const n = nodeIndex.get(name);
    edgeInput.setCustomValidity(e === undefined && n === undefined ? 'no edge or node with that name' : '');
    if (e !== undefined) toggleEdge(e);
    else if (n !== undefined) toggleNode(n);
  };
  edgeToggle.addEventListener('click', toggleByName);
  edgeInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') toggleByName();
  });
  reset.addEventListener('click', () => {
    forced.clear();
    nodesOff.clear();
    renderChanges();
    if (ctx) ctx.resetThreshold();
  });
  promptSel.addEventListener('change', showPrompt);
  renderChanges();
  showPrompt();

  // ---- the API ---------------------------------------------------------------------------
  const notReady = (): never => {
    throw new Error('circuitryLive: the model is not loaded yet (wait for circuitryLive.ready)');
  };
  const api: CircuitryLive = {
    ready: false,
    error: null,
    backend: null,
    metric: live.metric,
    full: (ds = 0) => (engine ? engine.full(ds).metric : notReady()),
    empty: (ds = 0) => (engine ? engine.empty(ds).metric : notReady()),
    evaluate: (edgeNames, ds = 0) => (engine ? engine.evaluate(edgeNames, ds) : Promise.reject(new Error('circuitryLive: the model is not loaded yet (wait for circuitryLive.ready)'))),
    current: drawnNames,
    shown: () => shown,
  };
  window.circuitryLive = api;

  const load = async (): Promise<void> => {
    try {
      const t0 = performance.now();
      engine = await LiveEngine.load(live);
      api.backend = engine.backend;
      setValue(out.full, engine.full(circuit.dataset).metric);
      setValue(out.empty, engine.empty(circuit.dataset).metric);
      status.textContent = `${live.model} on tfjs ${engine.backend} · ${dataset.text.length} prompts of ${dataset.name} · ${live.metric}, noising with the corrupted run · loaded in ${Math.round(performance.now() - t0)} ms`;
      status.dataset.backend = engine.backend;
      wanted = drawnNames();
      await recompute();
      api.ready = true;
    } catch (err) {
      api.error = err instanceof Error ? err.message : String(err);
      status.className = 'live-error';
      status.textContent = `Live patching is unavailable: ${api.error}`;
      panel.dataset.busy = '0';
      console.error(err);
    }
  };

  return {
    visible(mask) {
      const outMask = Uint8Array.from(mask);
      for (const [i, v] of forced) outMask[i] = v;
      for (const n of nodesOff) for (const i of nodeEdges[n]) outMask[i] = 0;
      return outMask;
    },
    onDrawn(mask) {
      drawn = Uint8Array.from(mask);
      if (engine) request();
    },
    attach(c) {
      ctx = c;
      // clicks toggle (after the view's own handler has pinned the selection)
      c.view.sigma.on('clickEdge', ({ edge }) => {
        if (clickToggles.checked) setTimeout(() => toggleEdge(c.view.graph.getEdgeAttribute(edge, 'idx') as number), 0);
      });
      c.view.sigma.on('clickNode', ({ node }) => {
        if (clickToggles.checked) setTimeout(() => toggleNode(c.view.graph.getNodeAttribute(node, 'idx') as number), 0);
      });
      void load();
    },
  };
}
