import { createHash } from 'node:crypto';
import type { MaskEvaluator } from '../patching/patcher.js';
import type { AcdcStep } from '../graph/circuit-types.js';
import { type AcdcOrder, visitingOrder } from './order.js';
import { CircuitryError, InterruptedError } from '../errors.js';
import { type CheckpointStore, checkCheckpoint, fileCheckpoint } from './checkpoint.js';

/**
 * ACDC (Conmy et al. 2023, Algorithm 1). Starting from the full graph H, visit edges in a fixed
 * order; remove edge e if faith(H \ e) − faith(H) < τ, and keep it removed (faith(H) becomes
 * faith(H \ e)). faith is the divergence of the current circuit from the full model:
 *   kl            KL(clean ‖ current) at the last position, batch mean (the patcher's metric must be 'kl')
 *   diff          M(full) − M(current) for the patcher's task metric (logit difference by default)
 *   abs-diff      |M(full) − M(current)|
 */
export type AcdcFaith = 'kl' | 'diff' | 'abs-diff';

export interface AcdcOptions {
  readonly tau: number;
  readonly order?: AcdcOrder;
  readonly faith?: AcdcFaith;
  /** Only these edges are tested; every other edge is removed (patched) from the start. */
  readonly candidates?: readonly string[];
  /**
   * Checkpoint (a file, or a store inside a larger checkpoint) written after every destination
   * node and when the run stops; with `resume`, continue from it. Without `resume` an existing
   * one is an error unless `fresh` (then it is discarded).
   */
  readonly checkpoint?: string | CheckpointStore<AcdcCheckpoint>;
  readonly resume?: boolean;
  readonly fresh?: boolean;
  readonly onProgress?: (done: number, total: number, destination: string) => void;
  /** Checked after every forward pass: when it fires, the run checkpoints and stops. */
  readonly signal?: AbortSignal;
  /** Polled after every pass, like `signal`. */
  readonly shouldStop?: () => boolean;
  /**
   * Edges evaluated speculatively in one stacked pass (default: as many as the evaluator stacks
   * in one pass, at most 8; beyond that the guesses would cost passes of their own, and every
   * wrong one a wasted pass): copy j removes edge j from
   * the circuit with the batch's earlier edges decided as expected (see expectKept). Decisions
   * are read in order up to the first unexpected one, so the result is exactly the
   * one-edge-at-a-time result.
   */
  readonly speculate?: number;
  /**
   * Edges expected to be kept (e.g. those whose verified effect reaches τ). Speculative copies
   * then assume these kept and the rest removed, so a pass resolves several decisions even when
   * some edges stay; a wrong guess only ends the pass early. The result does not depend on it.
   */
  readonly expectKept?: ReadonlySet<string>;
  /**
   * Remove edges into nodes none of whose outputs remain without a forward pass: their effect
   * is exactly zero (recorded as delta 0, where a pass would give rounding noise). Only with
   * τ > 0, where it cannot change a decision. Off by default: the reference implementations
   * evaluate every edge, and plain ACDC reproduces their steps.
   */
  readonly skipUnused?: boolean;
}

export interface AcdcResult {
  /** Dense mask over the graph: 1 = edge kept. */
  readonly mask: Float32Array;
  readonly kept: string[];
  readonly steps: AcdcStep[];
  /** faith of the initial graph and of the final circuit. */
  readonly initialFaith: number;
  readonly finalFaith: number;
  readonly forwardPasses: number;
  /** false when stopped early (shouldStop); the checkpoint then holds the state. */
  readonly complete: boolean;
}

/** ACDC's resumable state. */
export interface AcdcCheckpoint {
  version: 2;
  key: string;
  /** Position of the next undecided edge in visiting order. */
  nextEdge: number;
  mask: number[]; // indices of kept edges
  faith: number;
  initialFaith: number;
  steps: AcdcStep[];
  forwardPasses: number;
}

export async function runAcdc(patcher: MaskEvaluator, opts: AcdcOptions): Promise<AcdcResult> {
  const graph = patcher.graph;
  const order = opts.order ?? 'acdc';
  const faithKind: AcdcFaith = opts.faith ?? (patcher.metric === 'kl' ? 'kl' : 'diff');
  if (faithKind === 'kl' && patcher.metric !== 'kl') throw new CircuitryError(`ACDC with KL divergence needs the 'kl' metric, not '${patcher.metric}'`);
  if (faithKind !== 'kl' && patcher.metric === 'kl') throw new CircuitryError(`ACDC faith '${faithKind}' needs a task metric such as logit-diff, not 'kl'`);
  if (!(opts.tau >= 0) || !Number.isFinite(opts.tau)) throw new CircuitryError(`the ACDC threshold τ must be a finite number ≥ 0, got ${opts.tau}`);
  if (patcher.direction !== 'noise') throw new CircuitryError('ACDC removes edges from the clean run: use the noise direction');
  const full = patcher.baseMetric;
  const faithOf = (metric: number) => (faithKind === 'kl' ? metric : faithKind === 'diff' ? full - metric : Math.abs(full - metric));

  const candidateSet = opts.candidates ? new Set(opts.candidates.map((n) => graph.edge(n).index)) : undefined;
  const groups = visitingOrder(graph, order)
    .map((g) => ({ destination: g.destination, edges: candidateSet ? g.edges.filter((e) => candidateSet.has(e.index)) : g.edges }))
    .filter((g) => g.edges.length > 0);
  const total = groups.reduce((n, g) => n + g.edges.length, 0);
  const key = checkpointKey(patcher, opts, order, faithKind);

  let mask = graph.denseEdgeArray(1);
  if (candidateSet) for (const e of graph.edges) if (!candidateSet.has(e.index)) mask[e.index] = 0;
  let steps: AcdcStep[] = [];
  let startEdge = 0;
  let passesBefore = patcher.forwardPasses;
  let faith: number;
  let initialFaith: number;
  const store = typeof opts.checkpoint === 'string' ? fileCheckpoint<AcdcCheckpoint>(opts.checkpoint) : opts.checkpoint;
  if (typeof opts.checkpoint === 'string') checkCheckpoint(opts.checkpoint, { resume: opts.resume, fresh: opts.fresh });
  const saved = opts.resume && store ? validCheckpoint(store, key) : undefined;
  if (saved) {
    mask = new Float32Array(graph.denseSize);
    for (const i of saved.mask) mask[i] = 1;
    steps = saved.steps;
    startEdge = saved.nextEdge;
    faith = saved.faith;
    initialFaith = saved.initialFaith;
    passesBefore -= saved.forwardPasses; // count the interrupted run's passes too
  } else {
    faith = faithOf((await patcher.evaluateAsync([mask]))[0]);
    initialFaith = faith;
  }

  // every decision changes its destination's layer and above: passes start there, from the
  // cached run of the circuit as it stands now (its lower layers change only later)
  patcher.setBaseMask(mask);
  try {
    return await decide();
  } finally {
    patcher.setBaseMask(undefined);
  }

  async function decide(): Promise<AcdcResult> {
    let done = steps.length;
    const speculate = Math.max(1, opts.speculate ?? Math.min(8, patcher.masksPerPass));
    // every edge in visiting order, with its group; a pass may run across groups
    const flat = groups.flatMap((g, gi) => g.edges.map((edge) => ({ edge, gi })));
    let pos = startEdge;
    const skipUnused = opts.skipUnused === true && opts.tau > 0;
    while (pos < flat.length) {
      const firstGroup = flat[pos].gi;
      // an edge into a node none of whose outputs remain has no effect at all: removed unevaluated
      while (skipUnused && pos < flat.length && !feedsCircuit(graph, mask, flat[pos].edge.dst)) {
        const { edge, gi } = flat[pos++];
        steps.push({ edge: edge.name, metric_if_removed: faith, delta: 0, removed: true });
        mask[edge.index] = 0;
        opts.onProgress?.(++done, total, groups[gi].destination.name);
      }
      // Copy j removes edge j from the circuit as it will be if the batch's earlier edges go as
      // expected: removed, unless expected kept and still feeding the circuit (an edge into a node
      // whose every output is removed changes nothing). The batch ends at the first edge expected
      // to stay: those are the guesses that fail (on the zoo models guesses of removal held), and
      // a failure wastes every copy after it.
      const batch: typeof flat = [];
      const expectRemoved: boolean[] = [];
      const masks: Float32Array[] = [];
      const trial = new Float32Array(mask);
      for (let end = pos; end < flat.length && batch.length < speculate && !(skipUnused && !feedsCircuit(graph, trial, flat[end].edge.dst)); end++) {
        const { edge } = flat[end];
        const m = new Float32Array(trial);
        m[edge.index] = 0;
        const goes = !(opts.expectKept?.has(edge.name) && feedsCircuit(graph, trial, edge.dst));
        batch.push(flat[end]);
        expectRemoved.push(goes);
        masks.push(m);
        if (!goes) break;
        trial[edge.index] = 0;
      }
      const stopped = () => ({ mask, kept: keptNames(mask, graph.edges), steps, initialFaith, finalFaith: faith, forwardPasses: patcher.forwardPasses - passesBefore, complete: false });
      const save = () => store?.save({ version: 2, key, nextEdge: pos, mask: keptIndices(mask, graph.edges), faith, initialFaith, steps, forwardPasses: patcher.forwardPasses - passesBefore });
      let values: number[] = [];
      try {
        if (masks.length > 0) values = (await patcher.evaluateAsync(masks, { signal: opts.signal })).map(faithOf);
      } catch (e) {
        if (!(e instanceof InterruptedError)) throw e;
        save();
        return stopped();
      }
      for (let j = 0; j < batch.length; j++) {
        const { edge: e, gi } = batch[j];
        const delta = values[j] - faith;
        const removed = delta < opts.tau;
        steps.push({ edge: e.name, metric_if_removed: values[j], delta, removed });
        opts.onProgress?.(++done, total, groups[gi].destination.name);
        pos++;
        if (removed) {
          mask[e.index] = 0;
          faith = values[j];
        }
        if (removed !== expectRemoved[j]) break; // later copies assumed otherwise: re-evaluate them
      }
      // after every pass that finishes a destination, checkpoint; after every pass, maybe stop
      const nextGroup = pos < flat.length ? flat[pos].gi : groups.length;
      const stop = pos < flat.length && (opts.signal?.aborted === true || opts.shouldStop?.() === true);
      if (nextGroup > firstGroup || stop) save();
      if (stop) return stopped();
    }
    store?.clear();
    return { mask, kept: keptNames(mask, graph.edges), steps, initialFaith, finalFaith: faith, forwardPasses: patcher.forwardPasses - passesBefore, complete: true };
  }
}

/** Whether destination row `dst` belongs to a node with a kept output edge (logits always). */
function feedsCircuit(graph: MaskEvaluator['graph'], mask: Float32Array, dst: number): boolean {
  const node = graph.destinations[dst].node;
  if (node === 'logits') return true;
  const si = graph.sourceIndex(node);
  return graph.destinations.some((d, di) => si < d.srcCount && mask[di * graph.nSrc + si] === 1);
}

function keptIndices(mask: Float32Array, edges: readonly { index: number }[]): number[] {
  return edges.filter((e) => mask[e.index] === 1).map((e) => e.index);
}

function keptNames(mask: Float32Array, edges: readonly { index: number; name: string }[]): string[] {
  return edges.filter((e) => mask[e.index] === 1).map((e) => e.name);
}

/** Identifies a run: a checkpoint is only resumed by the same data, graph and settings. */
function checkpointKey(patcher: MaskEvaluator, opts: AcdcOptions, order: AcdcOrder, faith: AcdcFaith): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ tau: opts.tau, order, faith, metric: patcher.metric, n: patcher.nExamples, clean: patcher.cleanMetric, corrupted: patcher.corruptedMetric, shape: patcher.graph.shape, candidates: opts.candidates ?? null }));
  return h.digest('hex').slice(0, 24);
}

function validCheckpoint(store: CheckpointStore<AcdcCheckpoint>, key: string): AcdcCheckpoint {
  const cp = store.load();
  if (!cp) throw new CircuitryError(`--resume: no checkpoint at ${store.path}`);
  if (cp.version !== 2 || cp.key !== key) {
    throw new CircuitryError(`${store.path}: the checkpoint belongs to a different run (model, data or settings changed); delete it or run with --fresh`);
  }
  return cp;
}
