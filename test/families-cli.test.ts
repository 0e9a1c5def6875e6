import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, readJson } from './helpers/fixtures.js';

/**
 * The commands as a user runs them, on each non-GPT-2 fixture model and its dataset of token ids:
 * attribute, patch (edge sweep), acdc and evaluate, checked against the fixture's numbers.
 */

const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const FAMILIES = ['neox', 'llama', 'qwen2', 'gemma2'] as const;

interface EdgesFile {
  clean_metric: number;
  corrupted_metric: number;
  parallel_attn_mlp: boolean;
  edges: Record<string, { eap: number; exact_patch_delta: number; eap_mask_gradient?: number }>;
}

function run(args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
  expect(r.status, `circuitry ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return { stdout: r.stdout, stderr: r.stderr };
}

const largest = (xs: number[]) => Math.max(...xs.map(Math.abs));

describe.each(FAMILIES)('circuitry on %s-shared', (family) => {
  const fx = join(FIXTURES, `${family}-shared`);
  const ref = readJson<EdgesFile>(fx, 'edges.json');
  const dataset = join(fx, 'dataset.jsonl');
  const names = Object.keys(ref.edges).sort();
  const eapRef = (n: string) => ref.edges[n].eap_mask_gradient ?? ref.edges[n].eap;
  // the fixture's folder as it is (its tokenizer loads; the dataset is token ids)
  const model = join(fx, 'model');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `circuitry-${family}-`));
  });

  it('attribute --method eap writes every edge with its EAP score and the family\'s cfg', () => {
    const out = join(dir, 'eap.json');
    run(['attribute', '--model', model, '--dataset', dataset, '--method', 'eap', '--top', '20', '--out', out]);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    expect(file.cfg).toMatchObject({ n_layers: 2, n_heads: 4, d_model: 64, parallel_attn_mlp: ref.parallel_attn_mlp });
    expect(Object.keys(file.edges).sort()).toEqual(names);
    const big = largest(names.map(eapRef));
    for (const n of names) expect(Math.abs(file.edges[n].score - eapRef(n)), n).toBeLessThan(1e-4 * big);
    expect(Object.values(file.edges as Record<string, { in_graph: boolean }>).filter((e) => e.in_graph)).toHaveLength(20);
  });

  it('patch --sweep edges gives every single-edge delta', () => {
    const out = join(dir, 'edges.json');
    run(['patch', '--model', model, '--dataset', dataset, '--sweep', 'edges', '--direction', 'noise', '--out', out]);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    expect(Math.abs(file.clean - ref.clean_metric)).toBeLessThan(1e-4);
    expect(Math.abs(file.corrupted - ref.corrupted_metric)).toBeLessThan(1e-4);
    expect(Object.keys(file.components).sort()).toEqual(names);
    const big = largest(names.map((n) => ref.edges[n].exact_patch_delta));
    for (const n of names) expect(Math.abs(file.components[n].delta - ref.edges[n].exact_patch_delta), n).toBeLessThan(1e-4 * big);
  });

  it('acdc prunes, and evaluate measures the circuit it wrote as acdc did', () => {
    const out = join(dir, 'acdc.json');
    run(['acdc', '--model', model, '--dataset', dataset, '--threshold', '0.02', '--metric', 'logit-diff', '--order', 'auto-circuit', '--out', out]);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    expect(file.cfg.parallel_attn_mlp).toBe(ref.parallel_attn_mlp);
    expect(file.meta.acdc.steps).toHaveLength(names.length);
    const kept = Object.values(file.edges as Record<string, { in_graph: boolean }>).filter((e) => e.in_graph).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(names.length);
    // the first decision is the single-edge patch of the first edge visited (metric M(clean) − M(current))
    const first = file.meta.acdc.steps[0];
    expect(Math.abs(first.delta + ref.edges[first.edge].exact_patch_delta)).toBeLessThan(1e-4);
    const evaluated = JSON.parse(run(['evaluate', out, '--model', model, '--dataset', dataset, '--json']).stdout);
    expect(evaluated.n_edges).toBe(kept);
    expect(Math.abs(evaluated.full - ref.clean_metric)).toBeLessThan(1e-4);
    expect(Math.abs(evaluated.empty - ref.corrupted_metric)).toBeLessThan(1e-4);
    expect(Math.abs(evaluated.circuit - file.meta.metrics.circuit)).toBeLessThan(1e-4);
  });

  it('discover runs the pipeline (screen, verify, prune, evaluate) and writes the family\'s circuit and report', () => {
    const yaml = join(dir, 'pipeline.yaml');
    const graphOut = join(dir, 'discovered.json');
    const report = join(dir, 'discovered.html');
    writeFileSync(yaml, [`model: ${model}`, `dataset: ${dataset}`, 'metric: logit-diff', 'screen: { method: eap }', 'verify: { top: 30 }', 'prune: { tau: 0.02 }', 'output:', `  graph: ${graphOut}`, `  report: ${report}`, ''].join('\n'));
    run(['discover', yaml]);
    const file = JSON.parse(readFileSync(graphOut, 'utf8'));
    expect(file.cfg.parallel_attn_mlp).toBe(ref.parallel_attn_mlp);
    expect(Object.keys(file.edges).sort()).toEqual(names);
    expect(Math.abs(file.meta.metrics.clean - ref.clean_metric)).toBeLessThan(1e-4);
    expect(Math.abs(file.meta.metrics.corrupted - ref.corrupted_metric)).toBeLessThan(1e-4);
    expect(Object.values(file.edges as Record<string, { in_graph: boolean }>).some((e) => e.in_graph)).toBe(true);
    expect(existsSync(report)).toBe(true);
  });
});
