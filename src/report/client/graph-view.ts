import { MultiDirectedGraph } from 'graphology';
import fa2Import from 'graphology-layout-forceatlas2';
import Sigma from 'sigma';
import type { EdgeDisplayData, NodeDisplayData } from 'sigma/types';
import { animateNodes } from 'sigma/utils';
import { PALETTE } from '../palette.js';
import type { GraphCfg, ReportNode } from '../types.js';
import { clear } from './dom.js';
import { CircuitEdgeProgram, RingNodeProgram } from './programs.js';

/**
 * A circuit drawing: sigma (WebGL) over a graphology multigraph holding every node of the
 * model and every candidate edge. Which edges are drawn is a mask (`setVisible`) applied by
 * sigma's reducers, so re-filtering never rebuilds the graph. Layered layout by default
 * (input left, layers in columns, logits right), ForceAtlas2 on demand.
 */

export interface ViewEdge {
  src: number;
  dst: number;
  port: number; // 0 none, 1 q, 2 k, 3 v
}

export interface EdgeLook {
  color: string;
  size: number;
}

export type Selection = { kind: 'node'; index: number } | { kind: 'edge'; index: number } | null;

export interface GraphViewOptions {
  container: HTMLElement;
  tooltip: HTMLElement;
  cfg: GraphCfg;
  nodes: readonly ReportNode[];
  edges: readonly ViewEdge[];
  edgeLook(index: number): EdgeLook;
  nodeColor(index: number): string;
  /** Content of the hover tooltip. */
  describe(sel: NonNullable<Selection>): Node;
  onSelect?(sel: Selection): void;
  /** Whether inactive nodes (no drawn edge) are drawn faintly in the layered layout. */
  showInactive?: boolean;
}

export type LayoutName = 'layered' | 'force';

// The layout package is CommonJS with an ES-style default in its typings; bundlers hand over module.exports itself.
const forceAtlas2 = ((fa2Import as unknown as { default?: unknown }).default ?? fa2Import) as typeof fa2Import.default;

/** Node labels with a white halo, so they stay legible over the edges. */
function drawLabel(ctx: CanvasRenderingContext2D, data: { x: number; y: number; size: number; label: string | null }, settings: { labelSize: number; labelWeight: string; labelFont: string }): void {
  if (!data.label) return;
  const size = settings.labelSize;
  ctx.font = `${settings.labelWeight} ${size}px ${settings.labelFont}`;
  const x = data.x + data.size + 3;
  const y = data.y + size / 3;
  ctx.lineJoin = 'round';
  ctx.lineWidth = 3.5;
  ctx.strokeStyle = 'rgba(255,255,255,0.95)';
  ctx.strokeText(data.label, x, y);
  ctx.fillStyle = '#1e293b';
  ctx.fillText(data.label, x, y);
}

const PORT_OFFSET = [0, -1, 0, 1];
const DENSE_EDGES = 5000;
const PORT_DASH_CODE = [0, 0, 1, 2];

export class GraphView {
  readonly graph: MultiDirectedGraph;
  readonly sigma: Sigma;
  private readonly opts: GraphViewOptions;
  private visible: Uint8Array;
  private nodeDegree: Int32Array;
  private selection: Selection = null;
  private focusNodes = new Set<number>();
  private hovered: number | null = null;
  private layout: LayoutName = 'layered';
  private readonly inEdges: number[][];
  private readonly outEdges: number[][];
  private baseSize = 8;
  private stopAnimation: (() => void) | null = null;
  private customBBox: { x: [number, number]; y: [number, number] } | null = null;

  constructor(opts: GraphViewOptions) {
    this.opts = opts;
    const n = opts.nodes.length;
    this.visible = new Uint8Array(opts.edges.length);
    this.nodeDegree = new Int32Array(n);
    this.inEdges = Array.from({ length: n }, () => []);
    this.outEdges = Array.from({ length: n }, () => []);
    this.graph = new MultiDirectedGraph({ allowSelfLoops: false });
    opts.nodes.forEach((node, i) => this.graph.addNode(node.name, { idx: i, x: 0, y: 0, size: 4, label: node.name }));
    opts.edges.forEach((e, i) => {
      this.inEdges[e.dst].push(i);
      this.outEdges[e.src].push(i);
    });
    this.applyLayered(false);
    this.sigma = new Sigma(this.graph, opts.container, {
      defaultEdgeType: 'circuit',
      defaultNodeType: 'ring',
      edgeProgramClasses: { circuit: CircuitEdgeProgram },
      nodeProgramClasses: { ring: RingNodeProgram },
      enableEdgeEvents: true,
      zIndex: true,
      renderEdgeLabels: false,
      labelFont: 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace',
      labelSize: 11,
      labelWeight: '500',
      labelColor: { color: '#1e293b' },
      defaultDrawNodeLabel: drawLabel,
      labelRenderedSizeThreshold: 0,
      labelDensity: 0.5,
      labelGridCellSize: 70,
      allowInvalidContainer: true,
      minEdgeThickness: 0.8,
      stagePadding: 36,
      itemSizesReference: 'screen',
      zoomToSizeRatioFunction: (ratio: number) => Math.sqrt(ratio),
      nodeReducer: (key, attrs) => this.reduceNode(key, attrs),
      edgeReducer: (key, attrs) => this.reduceEdge(key, attrs),
    });
    if (this.customBBox) this.sigma.setCustomBBox(this.customBBox);
    this.bindEvents();
  }

  /**
   * Draws exactly the edges whose mask entry is 1; returns how many that is. Only drawn edges
   * live in the graphology graph (sigma processes and draws every edge it holds, hidden or
   * not). Sigma re-indexes everything on each dropped edge, so when any edge goes, the edge
   * set is cleared (one event) and rebuilt; additions alone are applied one by one.
   */
  setVisible(mask: Uint8Array): number {
    const { edges, nodes } = this.opts;
    const old = this.visible;
    this.visible = Uint8Array.from(mask);
    let dropped = false;
    for (let i = 0; i < mask.length && !dropped; i++) dropped = old[i] === 1 && mask[i] !== 1;
    if (dropped) this.graph.clearEdges();
    this.nodeDegree.fill(0);
    let count = 0;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] !== 1) continue;
      const e = edges[i];
      if (dropped || old[i] !== 1) {
        this.graph.addDirectedEdgeWithKey(String(i), nodes[e.src].name, nodes[e.dst].name, { idx: i, port: PORT_OFFSET[e.port] ?? 0, dash: PORT_DASH_CODE[e.port] ?? 0 });
      }
      count++;
      this.nodeDegree[e.src]++;
      this.nodeDegree[e.dst]++;
    }
    // Above a few thousand edges, edge hover is no use and its picking pass doubles the drawing cost.
    const dense = count > DENSE_EDGES;
    if (this.sigma.getSetting('enableEdgeEvents') === dense) {
      this.sigma.setSetting('enableEdgeEvents', !dense);
      this.sigma.setSetting('hideEdgesOnMove', dense);
    }
    this.updateFocus();
    if (this.layout === 'force') this.applyForce(false);
    this.sigma.refresh();
    return count;
  }

  /** Number of edges sigma currently draws (from its own display data). */
  renderedEdgeCount(): number {
    let n = 0;
    this.graph.forEachEdge((key) => {
      const d = this.sigma.getEdgeDisplayData(key);
      if (d && !d.hidden) n++;
    });
    return n;
  }

  isVisible(edge: number): boolean {
    return this.visible[edge] === 1;
  }

  isActive(node: number): boolean {
    return this.nodeDegree[node] > 0;
  }

  /** Drawn input edges and output edges of a node. */
  neighbourEdges(node: number): { inputs: number[]; outputs: number[] } {
    return { inputs: this.inEdges[node].filter((i) => this.visible[i]), outputs: this.outEdges[node].filter((i) => this.visible[i]) };
  }

  select(sel: Selection, focusCamera = false): void {
    this.selection = sel;
    this.updateFocus();
    this.sigma.refresh({ skipIndexation: true });
    if (focusCamera && sel) {
      const key = sel.kind === 'node' ? this.opts.nodes[sel.index].name : this.opts.nodes[this.opts.edges[sel.index].dst].name;
      const d = this.sigma.getNodeDisplayData(key);
      if (d) void this.sigma.getCamera().animate({ x: d.x, y: d.y, ratio: 0.6 }, { duration: 450 });
    }
    this.opts.onSelect?.(sel);
  }

  getSelection(): Selection {
    return this.selection;
  }

  setLayout(name: LayoutName): void {
    this.layout = name;
    if (name === 'layered') this.applyLayered(true);
    else this.applyForce(true);
    void this.sigma.getCamera().animate({ x: 0.5, y: 0.5, ratio: 1, angle: 0 }, { duration: 300 });
  }

  getLayout(): LayoutName {
    return this.layout;
  }

  /** Viewport position (pixels from the container's top-left) of a node. */
  nodeViewportPosition(name: string): { x: number; y: number } | null {
    if (!this.graph.hasNode(name)) return null;
    const d = this.sigma.getNodeDisplayData(name);
    if (!d) return null;
    return this.sigma.framedGraphToViewport({ x: d.x, y: d.y });
  }

  resize(): void {
    if (this.opts.container.clientWidth === 0) return;
    if (this.layout === 'layered') this.applyLayered(false);
    this.sigma.resize();
    this.sigma.refresh();
  }

  kill(): void {
    this.sigma.kill();
  }

  private updateFocus(): void {
    this.focusNodes.clear();
    const sel = this.selection;
    if (!sel) return;
    if (sel.kind === 'node') {
      this.focusNodes.add(sel.index);
      for (const i of this.inEdges[sel.index]) if (this.visible[i]) this.focusNodes.add(this.opts.edges[i].src);
      for (const i of this.outEdges[sel.index]) if (this.visible[i]) this.focusNodes.add(this.opts.edges[i].dst);
    } else {
      const e = this.opts.edges[sel.index];
      this.focusNodes.add(e.src);
      this.focusNodes.add(e.dst);
    }
  }

  private reduceNode(_key: string, attrs: Record<string, unknown>): Partial<NodeDisplayData> {
    const i = attrs.idx as number;
    const active = this.nodeDegree[i] > 0 || (this.selection?.kind === 'node' && this.selection.index === i);
    const out: Partial<NodeDisplayData> = { ...(attrs as Partial<NodeDisplayData>) };
    if (!active && (this.layout === 'force' || this.opts.showInactive === false)) {
      out.hidden = true;
      return out;
    }
    out.size = active ? this.baseSize : Math.max(2.5, this.baseSize * 0.45);
    out.color = active ? this.opts.nodeColor(i) : PALETTE.inactiveNode;
    out.label = active ? this.opts.nodes[i].name : null;
    out.zIndex = active ? 1 : 0;
    if (this.selection) {
      if (this.focusNodes.has(i)) {
        out.forceLabel = true;
        out.zIndex = 2;
        out.highlighted = this.selection.kind === 'node' && this.selection.index === i;
      } else {
        out.color = PALETTE.inactiveNode;
        out.label = null;
      }
    }
    if (this.hovered === i) out.highlighted = true;
    return out;
  }

  private reduceEdge(_key: string, attrs: Record<string, unknown>): Partial<EdgeDisplayData> {
    const i = attrs.idx as number;
    const out: Partial<EdgeDisplayData> & Record<string, unknown> = { ...(attrs as Partial<EdgeDisplayData>) };
    if (!this.visible[i]) {
      out.hidden = true;
      return out;
    }
    const look = this.opts.edgeLook(i);
    out.color = look.color;
    out.size = look.size;
    out.zIndex = 1;
    const sel = this.selection;
    if (sel) {
      const e = this.opts.edges[i];
      const related = sel.kind === 'node' ? e.src === sel.index || e.dst === sel.index : sel.index === i;
      if (related) {
        out.zIndex = 2;
        out.size = look.size + 0.6;
      } else {
        out.color = PALETTE.fadedEdge;
        out.zIndex = 0;
      }
    }
    return out;
  }

  private bindEvents(): void {
    const { tooltip, container } = this.opts;
    const show = (sel: NonNullable<Selection>, x: number, y: number): void => {
      clear(tooltip);
      tooltip.appendChild(this.opts.describe(sel));
      tooltip.hidden = false;
      const w = tooltip.offsetWidth;
      const h = tooltip.offsetHeight;
      const cw = container.clientWidth;
      const ch = container.clientHeight;
      const left = x + 16 + w > cw ? Math.max(4, x - 16 - w) : x + 16;
      const top = y + 16 + h > ch ? Math.max(4, y - 16 - h) : y + 16;
      tooltip.style.left = `${left}px`;
      tooltip.style.top = `${top}px`;
    };
    const hide = (): void => {
      tooltip.hidden = true;
    };
    this.sigma.on('enterNode', ({ node, event }) => {
      this.hovered = this.graph.getNodeAttribute(node, 'idx') as number;
      container.style.cursor = 'pointer';
      show({ kind: 'node', index: this.hovered }, event.x, event.y);
      this.sigma.refresh({ skipIndexation: true, partialGraph: { nodes: [node] } });
    });
    this.sigma.on('leaveNode', ({ node }) => {
      this.hovered = null;
      container.style.cursor = '';
      hide();
      this.sigma.refresh({ skipIndexation: true, partialGraph: { nodes: [node] } });
    });
    this.sigma.on('enterEdge', ({ edge, event }) => {
      container.style.cursor = 'pointer';
      show({ kind: 'edge', index: this.graph.getEdgeAttribute(edge, 'idx') as number }, event.x, event.y);
    });
    this.sigma.on('leaveEdge', () => {
      container.style.cursor = '';
      hide();
    });
    this.sigma.on('clickNode', ({ node }) => {
      const i = this.graph.getNodeAttribute(node, 'idx') as number;
      const same = this.selection?.kind === 'node' && this.selection.index === i;
      this.select(same ? null : { kind: 'node', index: i });
    });
    this.sigma.on('clickEdge', ({ edge }) => {
      this.select({ kind: 'edge', index: this.graph.getEdgeAttribute(edge, 'idx') as number });
    });
    this.sigma.on('clickStage', () => this.select(null));
  }

  private positions(): Map<string, { x: number; y: number }> {
    const { nodes, cfg, container } = this.opts;
    const hasMlp = nodes.some((n) => n.kind === 'mlp');
    const H = cfg.nHeads;
    const L = cfg.nLayers;
    const rowSpan = H - 1 + (hasMlp ? 1.4 : 0);
    const w = Math.max(container.clientWidth, 200) - 120;
    const h = Math.max(container.clientHeight, 200) - 100;
    const row = 1;
    // column spacing chosen so the drawing fills the container's aspect ratio
    const col = Math.max(1.2, ((w / h) * Math.max(rowSpan, 2)) / (L + 1.4));
    const rowPx = h / Math.max(rowSpan, 2);
    const colPx = w / (L + 1.4);
    this.baseSize = Math.max(3.5, Math.min(11, Math.min(rowPx, colPx) * 0.2));
    const mid = -rowSpan / 2;
    const out = new Map<string, { x: number; y: number }>();
    for (const n of nodes) {
      let x: number;
      let y: number;
      if (n.kind === 'input') {
        x = 0;
        y = mid;
      } else if (n.kind === 'logits') {
        x = (L + 1) * col;
        y = mid;
      } else if (n.kind === 'head') {
        x = (n.layer + 1) * col;
        y = -n.head * row;
      } else {
        x = (n.layer + 1.4) * col;
        y = -(H - 1 + 1.4) * row;
      }
      out.set(n.name, { x, y });
    }
    return out;
  }

  private applyLayered(animate: boolean): void {
    const pos = this.positions();
    // room on the right for the labels of the last column (sigma keeps the aspect ratio)
    let x0 = Number.POSITIVE_INFINITY;
    let x1 = Number.NEGATIVE_INFINITY;
    let y0 = Number.POSITIVE_INFINITY;
    let y1 = Number.NEGATIVE_INFINITY;
    for (const p of pos.values()) {
      x0 = Math.min(x0, p.x);
      x1 = Math.max(x1, p.x);
      y0 = Math.min(y0, p.y);
      y1 = Math.max(y1, p.y);
    }
    const labelRoom = (x1 - x0) * (56 / Math.max(200, this.opts.container.clientWidth - 120));
    this.customBBox = { x: [x0, x1 + labelRoom], y: [y0, y1] };
    this.sigma?.setCustomBBox(this.customBBox);
    this.move(pos, animate);
  }

  private applyForce(animate: boolean): void {
    this.sigma.setCustomBBox(null);
    const active = this.opts.nodes.map((_, i) => this.nodeDegree[i] > 0);
    const sub = new MultiDirectedGraph();
    const layered = this.positions();
    this.opts.nodes.forEach((n, i) => {
      if (!active[i]) return;
      const p = this.layout === 'force' && !animate ? { x: this.graph.getNodeAttribute(n.name, 'x') as number, y: this.graph.getNodeAttribute(n.name, 'y') as number } : layered.get(n.name)!;
      sub.addNode(n.name, { x: p.x, y: p.y, size: this.baseSize });
    });
    let maxSize = 0;
    for (let i = 0; i < this.visible.length; i++) if (this.visible[i]) maxSize = Math.max(maxSize, this.opts.edgeLook(i).size);
    for (let i = 0; i < this.visible.length; i++) {
      if (!this.visible[i]) continue;
      const e = this.opts.edges[i];
      sub.addEdge(this.opts.nodes[e.src].name, this.opts.nodes[e.dst].name, { weight: 0.2 + this.opts.edgeLook(i).size / (maxSize || 1) });
    }
    const target = new Map<string, { x: number; y: number }>();
    if (sub.order > 0) {
      const settings = { ...forceAtlas2.inferSettings(sub), gravity: 1.5, scalingRatio: 8, slowDown: 4, barnesHutOptimize: sub.order > 400 };
      forceAtlas2.assign(sub, { iterations: 250, settings, getEdgeWeight: 'weight' });
      let cx = 0;
      let cy = 0;
      sub.forEachNode((key, a) => {
        target.set(key, { x: a.x as number, y: a.y as number });
        cx += a.x as number;
        cy += a.y as number;
      });
      cx /= sub.order;
      cy /= sub.order;
      // hidden nodes wait at the centre, so they neither stretch the frame nor fly in from afar
      for (const n of this.opts.nodes) if (!target.has(n.name)) target.set(n.name, { x: cx, y: cy });
    } else {
      for (const [k, p] of layered) target.set(k, p);
    }
    this.move(target, animate);
  }

  private move(target: Map<string, { x: number; y: number }>, animate: boolean): void {
    this.stopAnimation?.();
    this.stopAnimation = null;
    if (animate) {
      const t: Record<string, { x: number; y: number }> = {};
      for (const [k, p] of target) t[k] = p;
      this.stopAnimation = animateNodes(this.graph, t, { duration: 450 });
      return;
    }
    for (const [k, p] of target) this.graph.mergeNodeAttributes(k, p);
  }
}
