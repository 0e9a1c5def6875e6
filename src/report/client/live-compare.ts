import type { LiveData } from '../live-types.js';
import { el } from './dom.js';
import { fmt, fmtCount, fmtPct } from './format.js';
import { type CircuitryLive, installStyles, setValue } from './live.js';
import { LiveEngine } from './live-engine.js';

/** One row of the comparison's live table: a set of edges built from the circuits. */
export interface LiveSet {
  name: string;
  edges: string[];
}

/** Each circuit alone, then (two or more) their union and their intersection. */
export function comparisonSets(live: LiveData): LiveSet[] {
  const sets: LiveSet[] = live.circuits.map((c) => ({ name: c.name, edges: [...c.discovered] }));
  if (live.circuits.length < 2) return sets;
  const union = new Set(live.circuits.flatMap((c) => c.discovered));
  const inAll = [...union].filter((e) => live.circuits.every((c) => c.discovered.includes(e)));
  sets.push({ name: `union (${live.circuits.map((c) => c.name).join(' ∪ ')})`, edges: [...union] }, { name: `intersection (${live.circuits.map((c) => c.name).join(' ∩ ')})`, edges: inAll });
  return sets;
}

/**
 * Live patching on the comparison page: every circuit alone, their union and their intersection,
 * each evaluated on every circuit's own data, computed in the page. The API is the report's
 * (window.circuitryLive), with a dataset index; `sets()` lists the rows.
 */
export function liveComparison(live: LiveData): void {
  installStyles();
  const sets = comparisonSets(live);
  const status = el('p', { class: 'muted', text: `Loading ${live.model} (${(live.weightBytes / 2 ** 20).toFixed(2)} MB of weights)…`, attrs: { id: 'live-status' } });
  const dsLabel = (i: number): string => {
    const users = live.circuits.filter((c) => c.dataset === i).map((c) => c.name);
    return `${live.datasets[i].name} data (${users.join(', ')})`;
  };
  const head = el('tr', {}, el('th', { class: 'text', text: 'circuit' }), el('th', { text: 'edges' }));
  live.datasets.forEach((_, i) => head.append(el('th', { text: `${live.metric} · ${dsLabel(i)}` }), el('th', { text: 'normalized' })));
  const cells: HTMLElement[][][] = [];
  const body = el('tbody');
  sets.forEach((s, r) => {
    const row = el('tr', {}, el('td', { class: 'text', text: s.name, title: s.name }), el('td', { text: fmtCount(s.edges.length) }));
    cells.push(
      live.datasets.map((_, i) => {
        const m = el('td', { text: '…', attrs: { id: `live-cell-${r}-${i}` } });
        const n = el('td', { text: '…', attrs: { id: `live-norm-${r}-${i}` } });
        row.append(m, n);
        return [m, n];
      }),
    );
    body.append(row);
  });
  const baseRows = ['full model', 'empty circuit'].map((label) => {
    const row = el('tr', {}, el('td', { class: 'text', text: label }), el('td', { text: '—' }));
    const tds = live.datasets.map(() => {
      const m = el('td', { text: '…' });
      row.append(m, el('td', { text: '' }));
      return m;
    });
    body.append(row);
    return tds;
  });
  const time = el('p', { class: 'muted', attrs: { id: 'live-time' } });
  const panel = el(
    'section',
    { class: 'card wide live-card', attrs: { id: 'panel-live', 'data-busy': '1' } },
    el('h2', { text: 'Live patching: union, intersection and each circuit alone' }),
    status,
    el('div', { class: 'live-table-wrap' }, el('table', { class: 'live-table', attrs: { id: 'live-compare' } }, el('thead', {}, head), body)),
    time,
  );
  document.querySelector('.panels')?.prepend(panel);

  let engine: LiveEngine | null = null;
  const api: CircuitryLive & { sets(): LiveSet[] } = {
    ready: false,
    error: null,
    backend: null,
    metric: live.metric,
    full: (ds = 0) => (engine ? engine.full(ds).metric : NaN),
    empty: (ds = 0) => (engine ? engine.empty(ds).metric : NaN),
    evaluate: (edgeNames, ds = 0) => (engine ? engine.evaluate(edgeNames, ds) : Promise.reject(new Error('circuitryLive: the model is not loaded yet (wait for circuitryLive.ready)'))),
    current: () => [],
    shown: () => null,
    sets: () => sets.map((s) => ({ name: s.name, edges: [...s.edges] })),
  };
  window.circuitryLive = api;

  void (async () => {
    try {
      engine = await LiveEngine.load(live);
      api.backend = engine.backend;
      status.textContent = `${live.model} on tfjs ${engine.backend} · ${live.metric}, noising with the corrupted run, as circuitry evaluate`;
      status.dataset.backend = engine.backend;
      live.datasets.forEach((_, i) => {
        setValue(baseRows[0][i], engine!.full(i).metric);
        setValue(baseRows[1][i], engine!.empty(i).metric);
      });
      let ms = 0;
      for (const [r, s] of sets.entries()) {
        for (let i = 0; i < live.datasets.length; i++) {
          const res = await api.evaluate(s.edges, i);
          ms += res.ms;
          setValue(cells[r][i][0], res.metric);
          setValue(cells[r][i][1], res.normalized, `${fmt(res.normalized)} (${fmtPct(res.normalized)})`);
        }
      }
      setValue(time, ms, `${sets.length * live.datasets.length} circuits evaluated in ${Math.round(ms)} ms`);
      api.ready = true;
    } catch (err) {
      api.error = err instanceof Error ? err.message : String(err);
      status.className = 'live-error';
      status.textContent = `Live patching is unavailable: ${api.error}`;
      console.error(err);
    } finally {
      panel.dataset.busy = '0';
    }
  })();
}
