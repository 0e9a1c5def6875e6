import type { CircuitGraph, Destination, Edge } from '../graph/graph.js';
import { CircuitryError } from '../errors.js';

/**
 * ACDC's result depends on the order in which it visits edges, so the order is fixed, named and
 * documented:
 *
 * - `acdc` (Conmy et al. 2023, the paper's default): destinations in reverse topological order,
 *   logits first, then m{L-1}, then layer L-1's heads from the highest index to the lowest (each
 *   head's inputs as <q>, <k>, <v>), then m{L-2}, …; each destination's sources from the later
 *   layer to the earlier, higher head index first (m{l} before a{l}.h{H-1} … a{l}.h0, input last).
 * - `auto-circuit` (that library's order): destinations logits, m{L-1}, then layer L-1's heads as
 *   a{L-1}.h0<q>, a{L-1}.h0<k>, a{L-1}.h0<v>, a{L-1}.h1<q>, …, then m{L-2}, …; each destination's
 *   sources from the earliest: input, a0.h0, …, a0.h{H-1}, m0, a1.h0, ….
 */
export const ACDC_ORDERS = ['acdc', 'auto-circuit'] as const;
export type AcdcOrder = (typeof ACDC_ORDERS)[number];

export function parseAcdcOrder(name: string, where = '--order'): AcdcOrder {
  if (!(ACDC_ORDERS as readonly string[]).includes(name)) {
    throw new CircuitryError(`${where}: unknown ACDC order '${name}' (expected ${ACDC_ORDERS.join(' or ')})`);
  }
  return name as AcdcOrder;
}

/** Position of a destination in reverse topological order (larger = visited earlier). */
function sublayer(d: Destination): number {
  // within layer l the heads come before the MLP; logits come after everything
  return d.kind === 'logits' ? 2 * d.layer : 2 * d.layer + (d.kind === 'mlp' ? 1 : 0);
}

/** Destinations grouped in visiting order, each with its edges in visiting order. */
export function visitingOrder(graph: CircuitGraph, order: AcdcOrder): { destination: Destination; edges: Edge[] }[] {
  const byDst = new Map<number, Edge[]>();
  for (const e of graph.edges) {
    const list = byDst.get(e.dst) ?? [];
    list.push(e);
    byDst.set(e.dst, list);
  }
  const dsts = graph.destinations.map((d, i) => ({ d, i }));
  dsts.sort((a, b) => {
    const s = sublayer(b.d) - sublayer(a.d);
    if (s !== 0) return s;
    if (order === 'auto-circuit') return a.i - b.i; // canonical order within a layer
    if (a.d.head !== b.d.head) return b.d.head - a.d.head; // higher head first
    return a.i - b.i; // q, k, v
  });
  return dsts.map(({ d, i }) => {
    const edges = [...(byDst.get(i) ?? [])];
    if (order === 'acdc') edges.reverse(); // later sources first; within a layer higher heads first, the MLP before them
    return { destination: d, edges };
  });
}
