import { carried, createCircuit } from './circuit.js';
import type { Circuit } from './circuit.js';
import { CircuitGraph } from './graph.js';

export interface CollapseOptions {
  /**
   * How the q, k and v scores of `u->a{l}.h{h}<q|k|v>` become the score of `u->a{l}.h{h}`:
   * `sum` (default; EAP scores are additive over a destination's inputs) or `max-abs` (the
   * signed score with the largest magnitude). Missing (NaN) scores are skipped; all three
   * missing gives NaN.
   */
  reduce?: 'sum' | 'max-abs';
}

/**
 * The circuit at node granularity (`qkv: false`): each head takes one input edge per source,
 * in the graph when any of its q/k/v edges was. Edges into MLPs and the logits are unchanged.
 * A circuit already at node granularity comes back as an equal copy.
 */
export function collapseToNodes(circuit: Circuit, options: CollapseOptions = {}): Circuit {
  const reduce = options.reduce ?? 'sum';
  const from = circuit.graph;
  const graph = from.shape.qkv ? new CircuitGraph({ ...from.shape, qkv: false }) : from;
  const scores = new Float64Array(graph.denseSize).fill(Number.NaN); // summed in double, stored as float32
  const inGraph = new Uint8Array(graph.denseSize);
  // Sources are the same in both graphs, so a source index carries over unchanged.
  for (const e of from.edges) {
    // a{l}.h{h}<q> → a{l}.h{h}; m{l} and logits name themselves
    const target = graph.destinationIndex(from.destinations[e.dst].node) * graph.nSrc + e.src;
    const s = circuit.scores[e.index];
    if (circuit.inGraph[e.index]) inGraph[target] = 1;
    if (Number.isNaN(s)) continue;
    const prev = scores[target];
    if (Number.isNaN(prev)) scores[target] = s;
    else if (reduce === 'sum') scores[target] = prev + s;
    else if (Math.abs(s) > Math.abs(prev)) scores[target] = s;
  }
  return createCircuit(graph, {
    scores,
    inGraph,
    ...carried(circuit),
  });
}
