import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY } from './helpers/fixtures.js';

describe('circuitry patch --significance', () => {
  it('adds CIs, p- and q-values per component; deltas are those of the plain sweep', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-sig-'));
    const base = ['bin/circuitry.js', 'patch', '--model', join(TINY, 'model'), '--dataset', join(TINY, 'dataset.jsonl'), '--sweep', 'heads'];
    const plain = spawnSync('node', [...base, '--out', join(dir, 'plain.json')], { encoding: 'utf8' });
    expect(plain.status, plain.stderr).toBe(0);
    const sig = spawnSync('node', [...base, '--significance', '--resamples', '2000', '--out', join(dir, 'sig.json')], { encoding: 'utf8' });
    expect(sig.status, sig.stderr).toBe(0);
    expect(sig.stdout).toMatch(/significance: \d+ of 8 components at bh level 0.05/);
    const a = JSON.parse(readFileSync(join(dir, 'plain.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(dir, 'sig.json'), 'utf8'));
    expect(b.significance.n_examples).toBe(16);
    for (const [name, c] of Object.entries<{ delta: number; ci_low: number; ci_high: number; p: number; q: number }>(b.components)) {
      expect(c.delta).toBeCloseTo(a.components[name].delta, 5);
      expect(c.ci_low).toBeLessThanOrEqual(c.delta);
      expect(c.ci_high).toBeGreaterThanOrEqual(c.delta);
      expect(c.q).toBeGreaterThanOrEqual(c.p);
    }
  });
});

describe('circuitry attribute --significance', () => {
  it('gives every edge statistics whose mean is the fixture EAP score', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-sig-'));
    const r = spawnSync('node', ['bin/circuitry.js', 'attribute', '--model', join(TINY, 'model'), '--dataset', join(TINY, 'dataset.jsonl'), '--significance', '--resamples', '4000', '--top', '10', '--out', join(dir, 'a.json')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const meta = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8')).meta;
    const ref = JSON.parse(readFileSync(join(TINY, 'edges.json'), 'utf8')).edges as Record<string, { eap: number }>;
    const edges = meta.edge_significance.edges as Record<string, { mean: number; ci_low: number; ci_high: number }>;
    expect(Object.keys(edges)).toHaveLength(110);
    for (const [name, s] of Object.entries(edges)) {
      expect(s.mean).toBeCloseTo(ref[name].eap, 4);
      expect(s.ci_low).toBeLessThanOrEqual(s.mean + 1e-9);
      expect(s.ci_high).toBeGreaterThanOrEqual(s.mean - 1e-9);
    }
  });
});
