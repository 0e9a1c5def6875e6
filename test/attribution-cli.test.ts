import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attributeCommand } from '../src/cli/commands/attribute.js';
import { readCircuitFile, pruneDisconnected } from '../src/graph/index.js';
import { CircuitryError } from '../src/errors.js';
import { TINY, readJson } from './helpers/fixtures.js';

const ref = readJson<{ clean_metric: number; corrupted_metric: number; edges: Record<string, { eap: number }> }>(TINY, 'edges.json');
const largest = Math.max(...Object.values(ref.edges).map((e) => Math.abs(e.eap)));

describe('circuitry attribute', () => {
  let dir: string;
  const base = () => ({ model: join(TINY, 'model'), dataset: join(TINY, 'dataset.jsonl'), backend: 'wasm', method: 'eap', metric: 'logit-diff', direction: 'noise', ablation: 'patch', gradient: 'auto', greedy: false, prune: false, nodes: false });
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-attribute-'));
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation(() => {});
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    vi.restoreAllMocks();
  });

  it('writes every edge with its EAP score, the top N in the circuit, node scores and provenance', async () => {
    const out = join(dir, 'eap.json');
    expect(await attributeCommand.run({ ...base(), top: 10, nodes: true, out })).toBe(0);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    const names = Object.keys(ref.edges);
    expect(Object.keys(file.edges).sort()).toEqual([...names].sort());
    for (const name of names) expect(Math.abs(file.edges[name].score - ref.edges[name].eap), name).toBeLessThanOrEqual(1e-4 * largest);
    const top10 = [...names].sort((a, b) => Math.abs(ref.edges[b].eap) - Math.abs(ref.edges[a].eap)).slice(0, 10);
    expect(names.filter((n) => file.edges[n].in_graph).sort()).toEqual(top10.sort());
    expect(file.cfg).toMatchObject({ n_layers: 2, n_heads: 4, d_model: 64, parallel_attn_mlp: false });
    expect(file.meta).toMatchObject({ method: 'eap', metric: 'logit-diff', direction: 'noise', backend: 'wasm', config: { steps: 1, ablation: 'patch', selection: { top: 10 } } });
    expect(file.meta.dataset).toMatchObject({ n_examples: 16, seq_len: 12 });
    expect(file.meta.dataset.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(file.meta.model.hash).toMatch(/^[0-9a-f]+$/);
    expect(file.meta.metrics.clean).toBeCloseTo(ref.clean_metric, 5);
    expect(file.meta.metrics.corrupted).toBeCloseTo(ref.corrupted_metric, 5);
    expect(file.meta.timings.attribute).toBeGreaterThan(0);
    // a head's node score is the sum of its outgoing edge scores
    const fromA0h1 = names.filter((n) => n.startsWith('a0.h1->')).reduce((s, n) => s + ref.edges[n].eap, 0);
    expect(Math.abs(file.nodes['a0.h1'].score - fromA0h1)).toBeLessThan(1e-4 * largest);
    // the file loads back as a circuit
    const { circuit } = readCircuitFile(out);
    expect(circuit.graph.nEdges).toBe(110);
  });

  it('eap-ig with greedy selection and pruning gives a connected circuit of at most N edges', async () => {
    const out = join(dir, 'ig.json');
    expect(await attributeCommand.run({ ...base(), method: 'eap-ig', steps: 3, top: 20, greedy: true, prune: true, out })).toBe(0);
    const { file, circuit } = readCircuitFile(out);
    const inGraph = Object.values(file.edges).filter((e) => e.in_graph).length;
    expect(inGraph).toBeGreaterThan(0);
    expect(inGraph).toBeLessThanOrEqual(20);
    expect(Array.from(pruneDisconnected(circuit).inGraph)).toEqual(Array.from(circuit.inGraph));
    expect(file.meta).toMatchObject({ method: 'eap-ig', config: { steps: 3, selection: { greedy: true, prune: true } } });
    // EAP-IG scores are not EAP's
    const diff = Math.max(...Object.entries(file.edges).map(([n, e]) => Math.abs((e.score ?? 0) - ref.edges[n].eap)));
    expect(diff).toBeGreaterThan(0.05 * largest);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['--top with --threshold', { top: 5, threshold: 0.1 }, /--top and --threshold/],
    ['--steps with eap', { steps: 3 }, /--steps: method eap takes no integration steps/],
    ['an unknown method', { method: 'acdc' }, /--method: unknown method 'acdc' \(expected one of eap, eap-ig, eap-ig-activations\)/],
    ['accuracy', { metric: 'accuracy' }, /--metric: accuracy has zero gradient/],
    ['--greedy without --top', { greedy: true }, /--greedy: needs --top/],
    ['zero steps', { method: 'eap-ig', steps: 0 }, /--steps: expected a positive integer ≤ 1000, got '0'/],
    ['a missing dataset', { dataset: join(TINY, 'nope.jsonl') }, /--dataset: no such file/],
    ['--top beyond the graph', { top: 500 }, /--top: 500 is more than the 110 edges/],
    ['an unknown direction', { direction: 'sideways' }, /--direction: expected one of noise, denoise/],
    ['mask gradients with eap-ig', { method: 'eap-ig', gradient: 'mask' }, /--gradient mask/],
  ];
  for (const [what, flags, message] of bad) {
    it(`rejects ${what} and writes nothing`, async () => {
      const out = join(dir, `bad-${what.replace(/\W+/g, '-')}.json`);
      await expect(attributeCommand.run({ ...base(), ...flags, out })).rejects.toThrow(CircuitryError);
      await expect(attributeCommand.run({ ...base(), ...flags, out })).rejects.toThrow(message);
      expect(existsSync(out)).toBe(false);
    });
  }
});
