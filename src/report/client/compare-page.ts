import { PALETTE } from '../palette.js';
import type { ComparisonData } from '../types.js';
import { heatmap, sequentialScale } from './charts.js';
import { byId, el } from './dom.js';
import { fmt, fmtCount, fmtPct, fmtSigned } from './format.js';
import { GraphView } from './graph-view.js';

/**
 * The comparison page: one drawing per circuit with edges and nodes coloured by how many
 * circuits share them, the IoU matrices, and the lists of shared and unique parts.
 */
export function startComparison(d: ComparisonData): void {
  document.title = `${d.title} — circuitry`;
  byId('title')!.textContent = d.title;
  byId('subtitle')!.textContent = d.circuits.map((c) => c.name).join(' · ');
  const k = d.circuits.length;
  const shareColor = (shared: number): string => (shared >= k ? PALETTE.sharedAll : shared > 1 ? PALETTE.sharedSome : PALETTE.unique);
  const shareText = (shared: number): string => (shared >= k ? `in all ${k} circuits` : shared > 1 ? `in ${shared} of ${k} circuits` : 'only in this circuit');
  const views: GraphView[] = [];

  d.circuits.forEach((c, ci) => {
    byId(`circuit-name-${ci}`)!.textContent = c.name;
    const sub = byId(`circuit-sub-${ci}`)!;
    sub.textContent = [`${fmtCount(c.nEdges)} edges`, `${fmtCount(c.nNodes)} nodes`, c.title !== c.name ? c.title : null, c.method].filter(Boolean).join(' · ');
    sub.title = sub.textContent;
    let maxAbs = 0;
    for (const e of c.edges) if (e.score !== null) maxAbs = Math.max(maxAbs, Math.abs(e.score));
    const view = new GraphView({
      container: byId(`graph-${ci}`)!,
      tooltip: byId(`tooltip-${ci}`)!,
      cfg: c.cfg,
      nodes: c.nodes,
      edges: c.edges,
      edgeLook: (i) => {
        const s = c.edges[i].score;
        return { color: shareColor(c.edges[i].shared), size: 1 + 3 * (maxAbs > 0 && s !== null ? Math.sqrt(Math.abs(s) / maxAbs) : 0.4) };
      },
      nodeColor: (i) => {
        const n = c.nodes[i];
        return n.inGraph ? shareColor(n.shared) : PALETTE.inactiveNode;
      },
      describe: (sel) => {
        const box = el('div');
        if (sel.kind === 'edge') {
          const e = c.edges[sel.index];
          box.append(
            el('div', { class: 'item-title', text: e.name }),
            el('dl', { class: 'kv' }, el('dt', { text: 'Score' }), el('dd', { text: fmtSigned(e.score) }), el('dt', { text: 'Shared' }), el('dd', { text: shareText(e.shared) })),
          );
        } else {
          const n = c.nodes[sel.index];
          const { inputs, outputs } = view.neighbourEdges(sel.index);
          box.append(
            el('div', { class: 'item-title', text: n.name }),
            el(
              'dl',
              { class: 'kv' },
              el('dt', { text: 'Shared' }),
              el('dd', { text: n.inGraph ? shareText(n.shared) : 'not in this circuit' }),
              el('dt', { text: 'Inputs' }),
              el('dd', { text: String(inputs.length) }),
              el('dt', { text: 'Outputs' }),
              el('dd', { text: String(outputs.length) }),
            ),
          );
        }
        return box;
      },
    });
    view.setVisible(new Uint8Array(c.edges.length).fill(1));
    views.push(view);
  });

  // Overlap lists
  const overlap = byId('overlap')!;
  const table = el('table', { class: 'data plain', attrs: { id: 'overlap-table' } });
  table.append(
    el('thead', {}, el('tr', {}, el('th', { class: 'name', text: 'Circuit' }), el('th', { text: 'Edges' }), el('th', { text: 'Nodes' }), el('th', { text: 'Edges only here' }), el('th', { text: 'Nodes only here' }), el('th', { text: 'Edges shared by all' }))),
  );
  const tbody = el('tbody');
  for (const c of d.circuits) {
    tbody.append(
      el(
        'tr',
        {},
        el('td', { class: 'name', text: c.name }),
        el('td', { class: 'num', text: fmtCount(c.nEdges) }),
        el('td', { class: 'num', text: fmtCount(c.nNodes) }),
        el('td', { class: 'num', text: fmtCount(c.uniqueEdges.length) }),
        el('td', { class: 'num', text: fmtCount(c.uniqueNodes.length) }),
        el('td', { class: 'num', text: c.nEdges ? fmtPct(d.sharedEdges.length / c.nEdges, 0) : '—' }),
      ),
    );
  }
  table.append(tbody);
  overlap.append(el('div', { class: 'table-wrap' }, table));
  const lists = el('div', { class: 'lists' });
  const box = (title: string, items: string[]): HTMLElement => {
    const chips = el('div', { class: 'chips' }, ...items.slice(0, 400).map((s) => el('span', { class: 'chip', text: s })));
    if (items.length > 400) chips.append(el('span', { class: 'muted', text: `+${fmtCount(items.length - 400)} more` }));
    return el('div', { class: 'list-box' }, el('h3', { text: `${title} (${fmtCount(items.length)})` }), items.length ? chips : el('p', { class: 'muted', text: 'none' }));
  };
  lists.append(box('Edges in every circuit', d.sharedEdges), box('Nodes in every circuit', d.sharedNodes));
  for (const c of d.circuits) lists.append(box(`Edges only in ${c.name}`, c.uniqueEdges));
  overlap.append(el('div', { class: 'sub' }, lists));

  // IoU matrices
  const names = d.circuits.map((c) => c.name);
  const iou = (id: string, m: number[][], what: string): void => {
    const root = byId(id)!;
    root.append(
      heatmap({
        rows: names,
        cols: names,
        values: m,
        scale: sequentialScale(0, 1),
        showValues: true,
        format: (v) => fmt(v, 2),
        scaleLabel: 'IoU',
        cellTitle: (r, c) => `${names[r]} vs ${names[c]}: ${what} IoU ${fmt(m[r][c], 3)}`,
      }),
    );
  };
  iou('iou-edges', d.iouEdges, 'edge');
  iou('iou-nodes', d.iouNodes, 'node');

  const api = {
    ready: true,
    kind: 'compare' as const,
    edgeCounts: (): number[] => views.map((v) => v.renderedEdgeCount()),
    nodePosition: (ci: number, name: string): { x: number; y: number } | null => views[ci]?.nodeViewportPosition(name) ?? null,
  };
  (window as unknown as { __circuitry: typeof api }).__circuitry = api;
}
