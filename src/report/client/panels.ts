import type { Example, FaithfulnessCurve, Sweep } from '../../graph/circuit-types.js';
import type { CircuitCounts, MetricsData, ReportData, SummaryEntry } from '../types.js';
import { divergingScale, faithfulnessChart, heatmap } from './charts.js';
import { el } from './dom.js';
import { fmt, fmtCount, fmtPct, fmtSigned } from './format.js';

/** The report's side and bottom panels; each fills a container the server put on the page. */

export function kvList(rows: SummaryEntry[], cls = 'kv left'): HTMLDListElement {
  const dl = el('dl', { class: cls });
  for (const r of rows) dl.append(el('dt', { text: r.label }), el('dd', { text: r.value }));
  return dl;
}

export function renderSummary(root: HTMLElement, d: ReportData): void {
  if (d.summary.length) root.append(kvList(d.summary));
  if (d.timings.length) {
    const total = d.timings.find((t) => t.label === 'total');
    const box = el('details', {}, el('summary', { text: `Timings${total ? ` · ${total.value} total` : ''}` }), kvList(d.timings, 'kv'));
    root.append(box);
  }
  if (d.versions.length) root.append(el('details', {}, el('summary', { text: 'Versions' }), kvList(d.versions, 'kv')));
  if (d.config) root.append(el('details', {}, el('summary', { text: 'Configuration' }), el('pre', { class: 'config', text: d.config })));
}

function card(label: string, value: string, cls = 'metric', extra?: Node): HTMLDivElement {
  return el('div', { class: cls }, el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }), extra);
}

/** Metric cards: meta's metrics, plus the edge and node counts recomputed from the in_graph flags, and where meta disagrees with them. */
export function renderMetrics(root: HTMLElement, m: MetricsData | null, c: CircuitCounts): void {
  renderMetricCards(root, m ?? {}, c);
  if (c.warnings.length) {
    const list = el('ul');
    for (const w of c.warnings) list.append(el('li', { text: w }));
    root.append(el('div', { class: 'warnings', attrs: { role: 'note' } }, el('h3', { text: 'The file disagrees with its edges' }), list));
  }
}

function renderMetricCards(root: HTMLElement, m: MetricsData, c: CircuitCounts): void {
  const metric = m.metric ? ` (${m.metric})` : '';
  const cards = el('div', { class: 'metric-cards' });
  if (m.normalized !== undefined) {
    const bar = el('div', { class: 'bar' }, el('div'));
    (bar.firstChild as HTMLElement).style.width = `${Math.max(0, Math.min(1, m.normalized)) * 100}%`;
    cards.append(card('Normalized recovery', fmtPct(m.normalized), 'metric hero', bar));
  }
  cards.append(card('Edges in circuit', `${fmtCount(c.edges)} of ${fmtCount(c.totalEdges)}`), card('Nodes in circuit', fmtCount(c.nodes)));
  const pairs: [string, number | undefined][] = [
    [`Clean${metric}`, m.clean],
    [`Corrupted${metric}`, m.corrupted],
    [`Circuit${metric}`, m.circuit],
    [`Empty circuit${metric}`, m.empty],
  ];
  for (const [label, v] of pairs) if (v !== undefined) cards.append(card(label, fmt(v)));
  if (cards.childElementCount) root.append(cards);
  if (m.groundTruth) {
    const g = m.groundTruth;
    const rows: SummaryEntry[] = [{ label: 'Planted edges', value: fmtCount(g.nEdges) }];
    if (g.rocAuc !== undefined) rows.push({ label: 'ROC AUC', value: fmt(g.rocAuc, 3) });
    if (g.precision !== undefined) rows.push({ label: 'Precision', value: fmtPct(g.precision) });
    if (g.recall !== undefined) rows.push({ label: 'Recall', value: fmtPct(g.recall) });
    root.append(el('div', { class: 'sub' }, el('h3', { text: 'Against the ground truth' }), kvList(rows, 'kv')));
  }
  if (m.acdc) {
    const rows: SummaryEntry[] = [{ label: 'τ', value: fmt(m.acdc.tau) }];
    if (m.acdc.order) rows.push({ label: 'Visiting order', value: m.acdc.order });
    if (m.acdc.metric) rows.push({ label: 'Metric', value: m.acdc.metric });
    if (m.acdc.nSteps !== undefined) rows.push({ label: 'Decisions', value: fmtCount(m.acdc.nSteps) });
    root.append(el('div', { class: 'sub' }, el('h3', { text: 'ACDC' }), kvList(rows, 'kv')));
  }
}

export function renderFaithfulness(root: HTMLElement, f: FaithfulnessCurve): void {
  const stats = el('div', { class: 'stats' });
  if (f.cpr !== undefined) stats.append(el('span', { class: 'stat', title: 'area under the faithfulness curve (higher is better)' }, 'CPR', el('b', { text: fmt(f.cpr, 3) })));
  if (f.cmd !== undefined) stats.append(el('span', { class: 'stat', title: 'area under |1 − faithfulness| (lower is better)' }, 'CMD', el('b', { text: fmt(f.cmd, 3) })));
  stats.append(el('span', { class: 'stat' }, 'points', el('b', { text: String(f.points.length) })));
  root.append(stats, faithfulnessChart(f.points));
}

export function renderSweeps(root: HTMLElement, sweeps: Sweep[]): void {
  for (const s of sweeps) {
    const scale = divergingScale(s.recovery.flat());
    const box = el('div', { class: 'sweep' }, el('h3', {}, s.kind, el('span', { text: ` · ${s.direction}${s.metric ? ` · ${s.metric}` : ''} · ${s.rows.length} × ${s.cols.length}` })));
    box.append(
      heatmap({
        rows: s.rows,
        cols: s.cols,
        values: s.recovery,
        scale,
        scaleLabel: 'recovery',
        cellTitle: (r, c) => `${s.rows[r]} × ${s.cols[c]}: recovery ${fmt(s.recovery[r][c])}${s.value ? `, metric ${fmt(s.value[r][c])}` : ''}`,
      }),
    );
    root.append(box);
  }
}

type SortKey = 'rank' | 'name' | 'score' | 'abs' | 'verified' | 'tau' | 'in';

/** The top edges by |score| in a table sorted by clicking a header. */
export function renderTopEdges(root: HTMLElement, d: ReportData, onPick: (edge: number) => void): void {
  const E = d.edges;
  const n = E.name.length;
  const order = Array.from({ length: n }, (_, i) => i)
    .filter((i) => E.score[i] !== null)
    .sort((a, b) => Math.abs(E.score[b]!) - Math.abs(E.score[a]!) || a - b)
    .slice(0, d.topEdges);
  const rank = new Map(order.map((e, r) => [e, r + 1]));
  const hasVerified = order.some((i) => E.verified[i] !== null);
  const hasTau = order.some((i) => E.tauState[i] !== 0);
  const tauValue = (i: number): number => (E.tauState[i] === 2 ? Number.POSITIVE_INFINITY : E.tauState[i] === 1 ? E.tau[i]! : Number.NaN);
  const cols: { key: SortKey; label: string; cls: string; value(i: number): number | string; show(i: number): string; title?: string }[] = [
    { key: 'rank', label: '#', cls: 'num', value: (i) => rank.get(i)!, show: (i) => String(rank.get(i)) },
    { key: 'name', label: 'Edge', cls: 'name', value: (i) => E.name[i], show: (i) => E.name[i] },
    { key: 'score', label: 'Score', cls: 'num', value: (i) => E.score[i] ?? Number.NaN, show: (i) => fmtSigned(E.score[i]), title: 'attribution score' },
    { key: 'abs', label: '|Score|', cls: 'num', value: (i) => Math.abs(E.score[i] ?? Number.NaN), show: (i) => fmt(Math.abs(E.score[i] ?? Number.NaN)) },
  ];
  if (hasVerified) cols.push({ key: 'verified', label: 'Verified', cls: 'num', value: (i) => E.verified[i] ?? Number.NaN, show: (i) => fmtSigned(E.verified[i]), title: 'exact path-patching effect' });
  if (hasTau) cols.push({ key: 'tau', label: 'ACDC τ', cls: 'num', value: tauValue, show: (i) => (E.tauState[i] === 2 ? 'kept' : fmt(E.tau[i])), title: 'the τ at which ACDC removed the edge' });
  cols.push({ key: 'in', label: 'In circuit', cls: '', value: (i) => E.inGraph[i], show: (i) => (E.inGraph[i] ? 'yes' : '—') });

  const table = el('table', { class: 'data', attrs: { id: 'top-edges-table' } });
  const head = el('tr');
  const body = el('tbody');
  let sortKey: SortKey = 'rank';
  let ascending = true;
  const draw = (): void => {
    const col = cols.find((c) => c.key === sortKey)!;
    const rows = [...order].sort((a, b) => {
      const va = col.value(a);
      const vb = col.value(b);
      let c: number;
      if (typeof va === 'string' || typeof vb === 'string') c = String(va).localeCompare(String(vb));
      else if (Number.isNaN(va) || Number.isNaN(vb)) return Number.isNaN(va) ? (Number.isNaN(vb) ? 0 : 1) : -1; // missing last
      else c = va - vb;
      return (ascending ? c : -c) || a - b;
    });
    body.replaceChildren(
      ...rows.map((i) => {
        const tr = el('tr', { attrs: { 'data-edge': E.name[i] } });
        for (const c of cols) {
          const td = el('td', { class: c.cls, text: c.show(i) });
          if (c.key === 'score' || c.key === 'verified') {
            const v = c.value(i) as number;
            if (v > 0) td.classList.add('pos');
            else if (v < 0) td.classList.add('neg');
          }
          if (c.key === 'in' && E.inGraph[i]) td.classList.add('yes');
          tr.append(td);
        }
        tr.addEventListener('click', () => onPick(i));
        return tr;
      }),
    );
    for (const th of Array.from(head.children)) {
      const k = (th as HTMLElement).dataset.key;
      th.setAttribute('aria-sort', k === sortKey ? (ascending ? 'ascending' : 'descending') : 'none');
    }
  };
  for (const c of cols) {
    const th = el('th', { class: c.cls === 'name' ? 'name' : '', text: c.label, title: c.title ?? `sort by ${c.label}`, attrs: { 'data-key': c.key, scope: 'col' } });
    th.addEventListener('click', () => {
      if (sortKey === c.key) ascending = !ascending;
      else {
        sortKey = c.key;
        ascending = c.key === 'rank' || c.key === 'name';
      }
      draw();
    });
    head.append(th);
  }
  table.append(el('thead', {}, head), body);
  draw();
  root.append(
    el('p', { class: 'muted', text: `The ${fmtCount(order.length)} edges with the largest |attribution score| of ${fmtCount(n)}. Click a header to sort, a row to show the edge.` }),
    el('div', { class: 'table-wrap' }, table),
  );
}

function promptRow(label: string, text: string, answer: string, cls: 'right' | 'wrong'): HTMLDivElement {
  const p = el('div', { class: 'prompt' }, text);
  if (answer) p.append(el('span', { class: `answer ${cls}`, text: answer, title: cls === 'right' ? 'answer' : 'wrong answer' }));
  return el('div', { class: 'row' }, el('div', { class: 'k', text: label }), p);
}

export function renderExamples(root: HTMLElement, examples: Example[]): void {
  const grid = el('div', { class: 'examples' });
  const shown = 12;
  const make = (ex: Example, i: number): HTMLDivElement => {
    const box = el('div', { class: 'example', attrs: { 'data-example': i } }, promptRow('clean', ex.clean, ex.answer, 'right'));
    if (ex.corrupted) box.append(promptRow('corrupted', ex.corrupted, ex.wrong, 'wrong'));
    if (ex.clean_tokens?.length) box.append(el('div', { class: 'tokens' }, ...ex.clean_tokens.map((t) => el('span', { class: 'chip', text: t }))));
    return box;
  };
  examples.slice(0, shown).forEach((ex, i) => grid.append(make(ex, i)));
  root.append(grid);
  if (examples.length > shown) {
    const more = el('button', { class: 'more', text: `Show all ${fmtCount(examples.length)} examples`, attrs: { type: 'button' } });
    more.addEventListener('click', () => {
      examples.slice(shown).forEach((ex, i) => grid.append(make(ex, i + shown)));
      more.remove();
    });
    root.append(more);
  }
}
