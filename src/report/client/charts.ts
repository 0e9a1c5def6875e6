import { PALETTE } from '../palette.js';
import { el, svg, svgTitle } from './dom.js';
import { fmt, fmtPct } from './format.js';

/** Inline SVG charts: the faithfulness curve and labelled heatmaps with a colour scale. */

function hexToRgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function mixRgb(a: [number, number, number], b: [number, number, number], t: number): string {
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const WHITE: [number, number, number] = [248, 250, 252];

export interface ColorScale {
  min: number;
  max: number;
  color(v: number): string;
  /** Stops for the colour bar, as (offset 0..1, colour). */
  stops: [number, string][];
  /** Tick values shown under the colour bar. */
  ticks: number[];
}

/** Negative → orange, 0 → near-white, positive → blue, symmetric around 0. */
export function divergingScale(values: number[]): ColorScale {
  let m = 0;
  for (const v of values) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  if (m === 0) m = 1;
  const pos = hexToRgb(PALETTE.positive);
  const neg = hexToRgb(PALETTE.negative);
  const color = (v: number): string => {
    if (!Number.isFinite(v)) return '#e5e7eb';
    const t = Math.max(-1, Math.min(1, v / m));
    return t >= 0 ? mixRgb(WHITE, pos, Math.pow(t, 0.8)) : mixRgb(WHITE, neg, Math.pow(-t, 0.8));
  };
  return {
    min: -m,
    max: m,
    color,
    stops: [0, 0.25, 0.5, 0.75, 1].map((o) => [o, color(-m + 2 * m * o)]),
    ticks: [-m, 0, m],
  };
}

/** 0 → near-white, 1 → teal. */
export function sequentialScale(min = 0, max = 1): ColorScale {
  const hi = hexToRgb(PALETTE.sharedAll);
  const color = (v: number): string => (Number.isFinite(v) ? mixRgb(WHITE, hi, Math.max(0, Math.min(1, (v - min) / (max - min || 1)))) : '#e5e7eb');
  return { min, max, color, stops: [0, 0.5, 1].map((o) => [o, color(min + (max - min) * o)]), ticks: [min, (min + max) / 2, max] };
}

let gradientId = 0;

function colorBar(scale: ColorScale, x: number, y: number, width: number, format: (v: number) => string): SVGGElement {
  const id = `cb-grad-${++gradientId}`;
  const grad = svg('linearGradient', { id, x1: 0, x2: 1, y1: 0, y2: 0 }, ...scale.stops.map(([o, c]) => svg('stop', { offset: o, 'stop-color': c })));
  const g = svg('g', { class: 'colorbar' }, svg('defs', {}, grad), svg('rect', { x, y, width, height: 8, rx: 2, fill: `url(#${id})`, stroke: PALETTE.border }));
  for (const t of scale.ticks) {
    const tx = x + ((t - scale.min) / (scale.max - scale.min || 1)) * width;
    const anchor = t === scale.min ? 'start' : t === scale.max ? 'end' : 'middle';
    g.appendChild(svg('text', { x: tx, y: y + 21, 'text-anchor': anchor }, format(t)));
  }
  return g;
}

const LABEL_MAX = 22;

function clip(label: string): string {
  return label.length > LABEL_MAX ? `${label.slice(0, LABEL_MAX - 1)}…` : label;
}

export interface HeatmapOptions {
  rows: string[];
  cols: string[];
  values: number[][];
  scale: ColorScale;
  /** Text of a cell's tooltip. */
  cellTitle(r: number, c: number): string;
  /** Print values inside the cells when they are large enough. */
  showValues?: boolean;
  format?(v: number): string;
  scaleLabel?: string;
}

/** A heatmap; SVG up to 6,000 cells, a canvas beyond (neuron sweeps). */
export function heatmap(o: HeatmapOptions): Element {
  const nR = o.rows.length;
  const nC = o.cols.length;
  const format = o.format ?? ((v: number) => fmt(v, 3));
  const charW = 6.6;
  const left = Math.min(LABEL_MAX, Math.max(...o.rows.map((r) => r.length))) * charW + 10;
  const maxColLabel = Math.min(LABEL_MAX, Math.max(...o.cols.map((c) => c.length)));
  const cellW = Math.max(4, Math.min(o.showValues ? 64 : 34, 640 / nC));
  const cellH = Math.max(o.showValues ? 28 : 10, Math.min(28, 360 / nR));
  const rotate = nC > 1 && maxColLabel * charW > cellW - 2;
  const top = rotate ? Math.min(90, maxColLabel * charW * 0.72 + 12) : 20;
  const colStride = Math.max(1, Math.ceil(12 / cellW));
  const rowStride = Math.max(1, Math.ceil(11 / cellH));
  const width = left + nC * cellW + 10;
  const height = top + nR * cellH + 44;
  const root = svg('svg', { class: 'chart heatmap', viewBox: `0 0 ${width} ${height}`, role: 'img' });
  root.style.maxWidth = `${Math.max(width, 320)}px`;
  o.cols.forEach((c, j) => {
    if (j % colStride !== 0) return;
    const x = left + j * cellW + cellW / 2;
    const tip = c.length > LABEL_MAX ? svgTitle(c) : null;
    const t = rotate
      ? svg('text', { x, y: top - 6, transform: `rotate(-50 ${x} ${top - 6})`, 'text-anchor': 'start' }, clip(c), tip)
      : svg('text', { x, y: top - 6, 'text-anchor': 'middle' }, clip(c), tip);
    root.appendChild(t);
  });
  o.rows.forEach((r, i) => {
    if (i % rowStride !== 0) return;
    root.appendChild(svg('text', { x: left - 6, y: top + i * cellH + cellH / 2 + 4, 'text-anchor': 'end' }, clip(r), r.length > LABEL_MAX ? svgTitle(r) : null));
  });
  if (nR * nC <= 6000) {
    const cells = svg('g');
    for (let i = 0; i < nR; i++) {
      for (let j = 0; j < nC; j++) {
        const v = o.values[i][j];
        const rect = svg('rect', { x: left + j * cellW, y: top + i * cellH, width: cellW - (cellW > 6 ? 1 : 0), height: cellH - (cellH > 6 ? 1 : 0), fill: o.scale.color(v) }, svgTitle(o.cellTitle(i, j)));
        cells.appendChild(rect);
        if (o.showValues && cellW >= 30) {
          const dark = Math.abs(v - o.scale.min) / (o.scale.max - o.scale.min || 1) > 0.6;
          cells.appendChild(svg('text', { x: left + j * cellW + cellW / 2, y: top + i * cellH + cellH / 2 + 4, 'text-anchor': 'middle', style: `fill:${dark ? '#fff' : PALETTE.text};pointer-events:none` }, format(v)));
        }
      }
    }
    root.appendChild(cells);
  } else {
    // Large sweeps: one pixel per cell in a canvas, scaled up by CSS.
    const canvas = el('canvas', { class: 'heat', attrs: { width: nC, height: nR, role: 'img' } });
    const ctx = canvas.getContext('2d');
    if (ctx) {
      for (let i = 0; i < nR; i++) {
        for (let j = 0; j < nC; j++) {
          ctx.fillStyle = o.scale.color(o.values[i][j]);
          ctx.fillRect(j, i, 1, 1);
        }
      }
    }
    const fo = svg('foreignObject', { x: left, y: top, width: nC * cellW, height: nR * cellH });
    canvas.style.width = '100%';
    canvas.style.height = '100%';
    canvas.title = `${nR} × ${nC} cells`;
    fo.appendChild(canvas);
    root.appendChild(fo);
  }
  const barW = Math.min(220, Math.max(120, nC * cellW));
  root.appendChild(colorBar(o.scale, left, top + nR * cellH + 12, barW, format));
  if (o.scaleLabel) root.appendChild(svg('text', { x: left + barW + 10, y: top + nR * cellH + 20 }, o.scaleLabel));
  return root;
}

export interface CurvePoint {
  fraction: number;
  n_edges: number;
  faithfulness: number;
}

/** Faithfulness against the fraction of edges kept (log x when all fractions are positive). */
export function faithfulnessChart(points: CurvePoint[]): SVGSVGElement {
  const W = 520;
  const H = 280;
  const m = { l: 46, r: 16, t: 14, b: 40 };
  const logX = points.every((p) => p.fraction > 0);
  const xs = points.map((p) => (logX ? Math.log10(p.fraction) : p.fraction));
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (logX) {
    x0 = Math.floor(x0);
    x1 = Math.max(Math.ceil(x1), x0 + 1);
  } else if (x0 === x1) {
    x1 = x0 + 1;
  }
  const ys = points.map((p) => p.faithfulness);
  const y0 = Math.min(0, ...ys);
  const y1 = Math.max(1.1, ...ys);
  const px = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'faithfulness curve' });
  // grid and axes
  const yTicks = niceTicks(y0, y1, 5);
  for (const t of yTicks) {
    root.appendChild(svg('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: py(t), y2: py(t) }));
    root.appendChild(svg('text', { x: m.l - 8, y: py(t) + 4, 'text-anchor': 'end' }, fmt(t, 3)));
  }
  const xTicks = logX ? range(x0, x1) : niceTicks(x0, x1, 5);
  for (const t of xTicks) {
    root.appendChild(svg('line', { class: 'grid', x1: px(t), x2: px(t), y1: m.t, y2: H - m.b }));
    root.appendChild(svg('text', { x: px(t), y: H - m.b + 16, 'text-anchor': 'middle' }, logX ? fmtPct(Math.pow(10, t), t < -2 ? 1 : 0) : fmtPct(t, 0)));
  }
  root.appendChild(svg('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  root.appendChild(svg('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  root.appendChild(svg('text', { x: (m.l + W - m.r) / 2, y: H - 6, 'text-anchor': 'middle' }, `edges kept (fraction${logX ? ', log scale' : ''})`));
  root.appendChild(svg('text', { x: 12, y: (m.t + H - m.b) / 2, transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, 'text-anchor': 'middle' }, 'faithfulness'));
  // reference: the full model (1) and the empty circuit (0)
  root.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: py(1), y2: py(1), stroke: PALETTE.muted, 'stroke-dasharray': '4 4', 'stroke-width': 1 }));
  root.appendChild(svg('text', { x: W - m.r, y: py(1) - 5, 'text-anchor': 'end' }, 'full model'));
  // area and line
  const pts = points.map((p, i) => [px(xs[i]), py(p.faithfulness)] as const);
  const line = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const base = py(Math.max(y0, 0));
  if (pts.length > 1) {
    root.appendChild(svg('path', { d: `${line} L${pts[pts.length - 1][0].toFixed(1)},${base} L${pts[0][0].toFixed(1)},${base} Z`, fill: PALETTE.positive, 'fill-opacity': 0.08 }));
  }
  root.appendChild(svg('path', { d: line, fill: 'none', stroke: PALETTE.positive, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
  points.forEach((p, i) => {
    const [x, y] = pts[i];
    root.appendChild(
      svg(
        'circle',
        { cx: x, cy: y, r: 3.2, fill: '#fff', stroke: PALETTE.positive, 'stroke-width': 1.6 },
        svgTitle(`${fmtPct(p.fraction, 2)} of edges (${p.n_edges.toLocaleString('en-US')}): faithfulness ${fmt(p.faithfulness)}`),
      ),
    );
  });
  return root;
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}

export function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => span / s <= n) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}
