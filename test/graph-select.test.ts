import { describe, it, expect } from 'vitest';
import { CircuitryError } from '../src/errors.js';
import {
  CircuitGraph,
  circuitFromEdgeScores,
  collapseToNodes,
  countInGraph,
  edgeSetIoU,
  greedy,
  inGraphEdges,
  inGraphNodes,
  nodeSetIoU,
  pruneDisconnected,
  threshold,
  topN,
  withEdges,
} from '../src/graph/index.js';
import type { Circuit } from '../src/graph/index.js';

const names = (c: Circuit) => inGraphEdges(c).map((e) => e.name);

/** Attention-only, 2 layers × 1 head (12 edges), every edge scored 0.1 unless given. */
const attn = new CircuitGraph({ nLayers: 2, nHeads: 1, hasMlp: false, qkv: true });
function attnCircuit(scores: Record<string, number>): Circuit {
  return circuitFromEdgeScores(attn, { ...Object.fromEntries(attn.edges.map((e) => [e.name, 0.1])), ...scores });
}

describe('topN and threshold', () => {
  const c = attnCircuit({ 'input->a0.h0<v>': 10, 'a0.h0->a1.h0<q>': -5, 'input->logits': 2, 'a0.h0->logits': 1 });

  it('takes the n highest |score| edges', () => {
    expect(names(topN(c, 3))).toEqual(['input->a0.h0<v>', 'a0.h0->a1.h0<q>', 'input->logits']);
    expect(names(topN(c, 3, { absolute: false }))).toEqual(['input->a0.h0<v>', 'input->logits', 'a0.h0->logits']);
    expect(countInGraph(topN(c, 0))).toBe(0);
    expect(countInGraph(topN(c, 12))).toBe(12);
  });

  it('breaks ties by canonical order and ignores the current membership', () => {
    const flat = attnCircuit({});
    expect(names(topN(withEdges(flat, ['a1.h0->logits']), 2))).toEqual(['input->a0.h0<q>', 'input->a0.h0<k>']);
  });

  it('never picks an unscored edge and refuses impossible n', () => {
    const some = circuitFromEdgeScores(attn, { 'input->logits': -1, 'a1.h0->logits': 0.5 });
    expect(names(topN(some, 2))).toEqual(['input->logits', 'a1.h0->logits']);
    expect(() => topN(some, 3)).toThrow(/only 2 edges have a score/);
    expect(() => topN(c, 13)).toThrow(CircuitryError);
    expect(() => topN(c, -1)).toThrow(/non-negative integer/);
  });

  it('keeps edges whose |score| reaches the threshold', () => {
    expect(names(threshold(c, 2))).toEqual(['input->a0.h0<v>', 'a0.h0->a1.h0<q>', 'input->logits']);
    expect(names(threshold(c, 2, { absolute: false }))).toEqual(['input->a0.h0<v>', 'input->logits']);
    expect(countInGraph(threshold(c, 100))).toBe(0);
    expect(countInGraph(threshold(c, 0))).toBe(12);
  });

  it('can prune after selecting', () => {
    // input->a0.h0<v> and a0.h0->a1.h0<q> lead nowhere without a path to the logits
    expect(names(topN(c, 3, { prune: true }))).toEqual(['input->logits']);
  });
});

describe('greedy', () => {
  it('grows from the logits backwards, unlike topN', () => {
    const c = attnCircuit({ 'input->a0.h0<v>': 10, 'a0.h0->a1.h0<q>': 5, 'input->logits': 2, 'a0.h0->logits': 1 });
    // candidates at first: edges into logits (2, 1, 0.1); a0.h0->logits brings a0.h0's inputs in
    expect(names(greedy(c, 1))).toEqual(['input->logits']);
    expect(names(greedy(c, 3))).toEqual(['input->a0.h0<v>', 'input->logits', 'a0.h0->logits']);
    expect(names(topN(c, 3))).toEqual(['input->a0.h0<v>', 'a0.h0->a1.h0<q>', 'input->logits']);
    // then the 0.1 ties in canonical order: a0.h0's q and k inputs come before a1.h0->logits
    expect(names(greedy(c, 5))).toEqual(['input->a0.h0<q>', 'input->a0.h0<k>', 'input->a0.h0<v>', 'input->logits', 'a0.h0->logits']);
    // a0.h0->a1.h0<q> (5) stays out until a1.h0 is reached through a1.h0->logits (0.1)
    const g6 = names(greedy(c, 6));
    expect(g6).toContain('a1.h0->logits');
    expect(g6).not.toContain('a0.h0->a1.h0<q>');
    expect(names(greedy(c, 7))).toContain('a0.h0->a1.h0<q>');
  });

  it('ranks by |score| unless absolute is false', () => {
    const c = attnCircuit({ 'a1.h0->logits': -3, 'input->a1.h0<k>': 0.5, 'input->logits': 0.3 });
    expect(names(greedy(c, 2))).toEqual(['input->a1.h0<k>', 'a1.h0->logits']);
    expect(names(greedy(c, 2, { absolute: false }))).toEqual(['input->logits', 'a0.h0->logits']);
  });

  it('selects every scored edge at n = nEdges, and each result is connected', () => {
    const c = attnCircuit({ 'input->a0.h0<v>': 10, 'a0.h0->a1.h0<q>': 5 });
    expect(countInGraph(greedy(c, 12))).toBe(12);
    for (let n = 1; n <= 12; n++) {
      const sel = greedy(c, n);
      // every in-graph edge ends at a node that is the logits or a source of another in-graph edge
      const sources = new Set(inGraphEdges(sel).map((e) => attn.sources[e.src].name));
      for (const e of inGraphEdges(sel)) {
        const node = attn.destinations[e.dst].node;
        expect(node === 'logits' || sources.has(node)).toBe(true);
      }
    }
    expect(() => greedy(circuitFromEdgeScores(attn, { 'input->a0.h0<q>': 1 }), 1)).toThrow(/only 0 scored edges/);
  });
});

describe('pruneDisconnected', () => {
  const g = new CircuitGraph({ nLayers: 2, nHeads: 2, hasMlp: true, qkv: true });
  const c = circuitFromEdgeScores(g, {});

  it('drops dangling edges and keeps every input → logits path', () => {
    const kept = [
      'input->a0.h0<k>', // a0.h0 is reached through its k input alone
      'a0.h0->logits',
      'input->a0.h1<q>',
      'a0.h1->a1.h0<v>',
      'a1.h0->m1',
      'm1->logits',
    ];
    const dangling = [
      'input->a1.h1<q>', // a1.h1 feeds nothing
      'a0.h0->m0', // m0 feeds nothing
      'm0->a1.h1<k>', // m0 has in-graph input, but a1.h1 is a dead end
    ];
    const pruned = pruneDisconnected(withEdges(c, [...kept, ...dangling]));
    expect(new Set(names(pruned))).toEqual(new Set(kept));
    expect(inGraphNodes(pruned)).toEqual(['input', 'a0.h0', 'a0.h1', 'a1.h0', 'm1', 'logits']);
  });

  it('drops chains that start at a node nothing reaches, however long', () => {
    // a0.h1 has no in-graph input, so everything downstream of it goes, even what reaches the logits
    const chain = ['a0.h1->m0', 'm0->a1.h0<q>', 'a1.h0->logits', 'a0.h1->a1.h1<v>'];
    expect(countInGraph(pruneDisconnected(withEdges(c, chain)))).toBe(0);
    expect(names(pruneDisconnected(withEdges(c, [...chain, 'input->a0.h1<v>'])))).toEqual(['input->a0.h1<v>', 'a0.h1->m0', 'm0->a1.h0<q>', 'a1.h0->logits']);
  });

  it('keeps a connected circuit as it is and the full graph whole', () => {
    const full = withEdges(c, g.edges.map((e) => e.name));
    expect(countInGraph(pruneDisconnected(full))).toBe(g.nEdges);
    const ok = withEdges(c, ['input->a1.h1<q>', 'a1.h1->logits']);
    expect(pruneDisconnected(ok).inGraph).toEqual(ok.inGraph);
    expect(countInGraph(pruneDisconnected(withEdges(c, [])))).toBe(0);
  });

  it('works at node granularity', () => {
    const n = collapseToNodes(withEdges(c, ['input->a0.h0<k>', 'a0.h0->a1.h1<q>', 'a1.h0->logits']));
    expect(names(pruneDisconnected(n))).toEqual([]);
    const m = collapseToNodes(withEdges(c, ['input->a0.h0<k>', 'a0.h0->a1.h1<q>', 'a1.h1->logits']));
    expect(names(pruneDisconnected(m))).toEqual(['input->a0.h0', 'a0.h0->a1.h1', 'a1.h1->logits']);
  });
});

describe('IoU', () => {
  const g = new CircuitGraph({ nLayers: 2, nHeads: 2, hasMlp: true, qkv: true });
  const c = circuitFromEdgeScores(g, {});

  it('compares edge sets', () => {
    const a = withEdges(c, ['input->a0.h0<q>', 'a0.h0->logits', 'm1->logits']);
    const b = withEdges(c, ['a0.h0->logits', 'm1->logits', 'input->m1']);
    expect(edgeSetIoU(a, b)).toBe(0.5);
    expect(edgeSetIoU(a, a)).toBe(1);
    expect(edgeSetIoU(a, withEdges(c, ['input->logits']))).toBe(0);
    expect(edgeSetIoU(withEdges(c, []), withEdges(c, []))).toBe(1);
    const other = circuitFromEdgeScores(new CircuitGraph({ nLayers: 3, nHeads: 2, hasMlp: true, qkv: true }), {});
    expect(() => edgeSetIoU(a, other)).toThrow(/different graphs/);
  });

  it('compares node sets, also across granularities', () => {
    const a = withEdges(c, ['input->a0.h0<q>', 'a0.h0->logits']); // input, a0.h0, logits
    const b = withEdges(c, ['input->a1.h1<v>', 'a1.h1->logits', 'a0.h0->m1']); // input, a1.h1, a0.h0, m1, logits
    expect(nodeSetIoU(a, b)).toBe(3 / 5);
    expect(nodeSetIoU(a, collapseToNodes(a))).toBe(1);
    expect(nodeSetIoU(withEdges(c, []), withEdges(c, []))).toBe(1);
  });
});
