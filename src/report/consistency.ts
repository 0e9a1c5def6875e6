import type { CircuitFile, CircuitMeta } from '../graph/circuit-types.js';
import type { CircuitCounts, ReportEdges, ReportNode } from './types.js';

/**
 * What the report can say about a circuit from its edges alone, and where `meta` or the nodes'
 * flags disagree with them. The edges' in_graph flags are the circuit; every other statement
 * about it (the pipeline's and ACDC's kept counts, the metrics of the circuit, node flags) is
 * checked against them.
 */
export function circuitCounts(file: CircuitFile, nodes: readonly ReportNode[], edges: ReportEdges): CircuitCounts {
  const kept = edges.inGraph.reduce((a, b) => a + b, 0);
  const endpoints = new Set<number>();
  edges.inGraph.forEach((g, i) => {
    if (g) endpoints.add(edges.src[i]).add(edges.dst[i]);
  });
  const warnings: string[] = [];
  const meta = (file.meta ?? {}) as CircuitMeta;
  const edgeWord = (n: number) => `${n} edge${n === 1 ? '' : 's'}`;
  const flagged = `${edgeWord(kept)} ${kept === 1 ? 'has' : 'have'} in_graph: true`;

  const pipeline = meta.pipeline as { prune?: { kept?: unknown; rescued?: unknown } } | undefined;
  if (typeof pipeline?.prune?.kept === 'number') {
    const said = pipeline.prune.kept + (Array.isArray(pipeline.prune.rescued) ? pipeline.prune.rescued.length : 0);
    if (said !== kept) warnings.push(`meta.pipeline says the circuit has ${edgeWord(said)}, but ${flagged}`);
  } else if (meta.method === 'acdc' && Array.isArray(meta.acdc?.steps)) {
    const said = meta.acdc.steps.filter((s) => s && s.removed === false).length;
    const decided = new Set(meta.acdc.steps.map((s) => s?.edge));
    // plain ACDC decides every edge: the kept ones are the circuit
    if (decided.size === edges.name.length && said !== kept) warnings.push(`meta.acdc.steps keep ${edgeWord(said)}, but ${flagged}`);
  }

  const m = meta.metrics;
  if (kept === 0 && m) {
    // with no edge kept the circuit is the empty circuit: the same metric, recovery 0
    if (typeof m.normalized === 'number' && Math.abs(m.normalized) > 1e-6) {
      warnings.push(`meta.metrics.normalized is ${m.normalized.toPrecision(3)}, but no edge is in the circuit (an empty circuit recovers 0)`);
    }
    if (typeof m.circuit === 'number' && typeof m.empty === 'number' && Math.abs(m.circuit - m.empty) > 1e-6 * Math.max(1, Math.abs(m.empty))) {
      warnings.push(`meta.metrics.circuit (${m.circuit.toPrecision(4)}) differs from meta.metrics.empty (${m.empty.toPrecision(4)}), but no edge is in the circuit`);
    }
  }

  const fileNodes = (file.nodes ?? {}) as Record<string, { in_graph?: unknown }>;
  const idle = nodes.filter((n, i) => fileNodes[n.name]?.in_graph === true && !endpoints.has(i)).map((n) => n.name);
  const missing = nodes.filter((n, i) => fileNodes[n.name]?.in_graph === false && endpoints.has(i)).map((n) => n.name);
  const list = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? ` and ${xs.length - 5} more` : '');
  const nodeWord = (xs: string[]) => (xs.length === 1 ? 'node' : 'nodes');
  if (idle.length) warnings.push(`${nodeWord(idle)} ${list(idle)} ${idle.length === 1 ? 'is' : 'are'} flagged in_graph but no in-graph edge touches ${idle.length === 1 ? 'it' : 'them'}`);
  if (missing.length) warnings.push(`${nodeWord(missing)} ${list(missing)} ${missing.length === 1 ? 'is' : 'are'} flagged in_graph: false but in-graph edges touch ${missing.length === 1 ? 'it' : 'them'}`);

  return { edges: kept, totalEdges: edges.name.length, nodes: endpoints.size, warnings };
}
