import type { CircuitGraph, Edge } from '../graph/graph.js';
import { recovery } from '../metrics/index.js';
import type { Patcher } from './patcher.js';
import type { OnProgress } from './progress.js';
import { CircuitryError } from '../errors.js';

/**
 * Path patching (Wang et al. 2022) on the masked engine. The senders' patched values reach only
 * the receivers' inputs; every other path from the senders (through later heads and MLPs, or
 * straight to the logits) still carries the values of the run being patched. In the edge
 * semantics of DESIGN.md that is exactly "patch the edges sender -> receiver": each receiver
 * reads the senders' patched outputs directly and recomputes from there, while nothing else
 * sees them.
 */

/** A head receiver reads the residual stream three times; path patching may target any of them. */
export type HeadInput = 'q' | 'k' | 'v';
export const HEAD_INPUTS: readonly HeadInput[] = ['q', 'k', 'v'];

export interface PathPatchOptions {
  /** Which inputs of head receivers named without <q>/<k>/<v> are patched (default all three). */
  readonly inputs?: readonly HeadInput[];
}

/** The outcome of one patched run, as DESIGN.md defines it. */
export interface PatchEffect {
  /** The metric of the patched run. */
  readonly metric: number;
  /** The patched run minus the unpatched run it started from (the clean run when noising). */
  readonly delta: number;
  /** (patched − corrupted) / (clean − corrupted); NaN when clean = corrupted. */
  readonly recovery: number;
}

export interface PathPatchResult extends PatchEffect {
  /** The edges that were patched, in canonical order. */
  readonly edges: readonly string[];
}

export interface PathSpec extends PathPatchOptions {
  readonly senders: readonly string[];
  readonly receivers: readonly string[];
}

export interface EdgeEffect extends PatchEffect {
  readonly edge: string;
}

/** metric, delta and recovery of a patched value under this patcher's direction. */
export function effectOf(patcher: Pick<Patcher, 'baseMetric' | 'cleanMetric' | 'corruptedMetric'>, metric: number): PatchEffect {
  return { metric, delta: metric - patcher.baseMetric, recovery: recovery(metric, patcher.cleanMetric, patcher.corruptedMetric) };
}

/**
 * The edges sender -> receiver for every sender/receiver pair that the graph connects (pairs
 * where the sender does not precede the receiver are skipped). Receivers are destination
 * names (`a1.h0<q>`, `m1`, `logits`) or head nodes (`a1.h0`, expanded to the `inputs` chosen).
 * Throws when a name is unknown or when no pair is connected.
 */
export function pathEdges(graph: CircuitGraph, senders: readonly string[], receivers: readonly string[], opts: PathPatchOptions = {}): Edge[] {
  if (senders.length === 0) throw new CircuitryError('path patching needs at least one sender');
  if (receivers.length === 0) throw new CircuitryError('path patching needs at least one receiver');
  const inputs = opts.inputs ?? HEAD_INPUTS;
  if (inputs.length === 0) throw new CircuitryError('path patching: inputs must name at least one of q, k, v');
  for (const i of inputs) {
    if (!HEAD_INPUTS.includes(i)) throw new CircuitryError(`path patching: unknown head input '${String(i)}' (expected q, k or v)`);
  }
  const srcIdx = [...new Set(senders)].map((s) => graph.sourceIndex(s));
  const dstIdx = new Set<number>();
  for (const r of receivers) {
    if (graph.shape.qkv && /^a\d+\.h\d+$/.test(r)) {
      for (const i of inputs) dstIdx.add(graph.destinationIndex(`${r}<${i}>`));
    } else {
      dstIdx.add(receiverIndex(graph, r));
    }
  }
  const edges: Edge[] = [];
  for (const di of [...dstIdx].sort((a, b) => a - b)) {
    const dst = graph.destinations[di];
    for (const si of [...srcIdx].sort((a, b) => a - b)) {
      if (si < dst.srcCount) edges.push(graph.edge(`${graph.sources[si].name}->${dst.name}`));
    }
  }
  if (edges.length === 0) {
    throw new CircuitryError(`path patching: no edge leads from {${senders.join(', ')}} to {${receivers.join(', ')}} (a sender must come before its receiver)`);
  }
  return edges;
}

function receiverIndex(graph: CircuitGraph, name: string): number {
  try {
    return graph.destinationIndex(name);
  } catch {
    const hint = graph.shape.qkv ? 'a{l}.h{h}, a{l}.h{h}<q|k|v>, m{l} or logits' : 'a{l}.h{h}, m{l} or logits (this graph has no <q>/<k>/<v> inputs)';
    throw new CircuitryError(`path patching: unknown receiver '${name}' (expected ${hint} within ${graph.shape.nLayers} layers and ${graph.shape.nHeads} heads)`);
  }
}

/** The dense mask keeping every edge except the given ones. */
export function maskPatching(patcher: Pick<Patcher, 'fullMask'>, edges: readonly Edge[]): Float32Array {
  const m = patcher.fullMask();
  for (const e of edges) m[e.index] = 0;
  return m;
}

/** Path patching from `senders` to `receivers`: one masked forward pass per chunk of prompts. */
export function pathPatch(patcher: Patcher, senders: readonly string[], receivers: readonly string[], opts: PathPatchOptions = {}): PathPatchResult {
  return pathPatchMany(patcher, [{ senders, receivers, inputs: opts.inputs }])[0];
}

/** Several path-patching experiments, stacked into as few forward passes as memory allows. */
export function pathPatchMany(patcher: Patcher, paths: readonly PathSpec[], opts: { onProgress?: OnProgress } = {}): PathPatchResult[] {
  const edgeSets = paths.map((p) => pathEdges(patcher.graph, p.senders, p.receivers, p));
  const values = patcher.evaluate(edgeSets.map((es) => maskPatching(patcher, es)), { onProgress: opts.onProgress });
  return values.map((v, i) => ({ ...effectOf(patcher, v), edges: edgeSets[i].map((e) => e.name) }));
}

/**
 * The real effect of each edge: the metric when only that edge is patched, with its delta from
 * the unpatched run and its recovery. Batched (many edges per forward pass). The pipeline's
 * verification step calls this on the top-ranked edges.
 */
export function verifyEdges(patcher: Patcher, edgeNames: readonly string[], opts: { onProgress?: OnProgress } = {}): EdgeEffect[] {
  const edges = edgeNames.map((n) => patcher.graph.edge(n));
  const values = patcher.evaluate(edges.map((e) => maskPatching(patcher, [e])), { onProgress: opts.onProgress });
  return values.map((v, i) => ({ edge: edges[i].name, ...effectOf(patcher, v) }));
}

