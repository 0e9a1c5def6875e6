import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { patchCommand } from '../src/cli/commands/patch.js';
import { CircuitryError } from '../src/errors.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { createProgress } from '../src/cli/progress.js';
import { TINY, readJson } from './helpers/fixtures.js';

const MODEL = join(TINY, 'model');
const DATASET = join(TINY, 'dataset.jsonl');
const ref = readJson<{ clean_metric: number; corrupted_metric: number }>(TINY, 'edges.json');

/** Runs `circuitry <argv>` in-process with only the patch command registered (as src/cli/main.ts does). */
async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  let code = 0;
  try {
    await yargs(argv)
      .option('backend', { type: 'string', global: true })
      .strict()
      .command({
        command: patchCommand.command,
        describe: patchCommand.describe,
        builder: patchCommand.builder,
        handler: async (args: Record<string, unknown>) => {
          code = (await patchCommand.run(args)) ?? 0;
        },
      })
      .fail((msg, e) => {
        throw e ?? new Error(msg);
      })
      .parseAsync();
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
  return { code, out: lines.join('\n') };
}

describe('circuitry patch', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-patch-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a head sweep and writes every component with metric, delta, recovery and provenance', async () => {
    const out = join(dir, 'heads.json');
    const r = await cli(['patch', '--backend', 'wasm', '--model', MODEL, '--dataset', DATASET, '--sweep', 'heads', '--direction', 'noise', '--top', '3', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^backend: wasm$/m);
    expect(r.out).toMatch(/component\s+metric\s+delta\s+recovery/);
    expect(readdirSync(dir)).toEqual(['heads.json']); // no temporary file left behind
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.backend).toBe('wasm');
    expect(f.tool.name).toBe('circuitry');
    expect(f.model.name).toBe(MODEL);
    expect(f.model.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(f.dataset).toMatchObject({ source: DATASET, n_examples: 16, seq_len: 12 });
    expect(f.dataset.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Number.isNaN(Date.parse(f.created))).toBe(false);
    expect(f).toMatchObject({ sweep: 'heads', direction: 'noise', metric: 'logit-diff', ablation: 'patch', rows: ['L0', 'L1'], cols: ['h0', 'h1', 'h2', 'h3'] });
    expect(f.clean).toBeCloseTo(ref.clean_metric, 5);
    expect(f.corrupted).toBeCloseTo(ref.corrupted_metric, 5);
    expect(f.forward_passes).toBeGreaterThan(0);
    const names = Object.keys(f.components);
    expect(names).toEqual(['a0.h0', 'a0.h1', 'a0.h2', 'a0.h3', 'a1.h0', 'a1.h1', 'a1.h2', 'a1.h3']);
    for (const c of Object.values(f.components) as { metric: number; delta: number; recovery: number }[]) {
      expect(c.delta).toBeCloseTo(c.metric - f.clean, 6);
      expect(c.recovery).toBeCloseTo((c.metric - f.corrupted) / (f.clean - f.corrupted), 5);
    }
    // the table lists the largest effects first
    const strongest = names.reduce((a, b) => (Math.abs(f.components[a].delta) >= Math.abs(f.components[b].delta) ? a : b));
    const tableRows = r.out.split('\n').filter((l) => /^a\d\.h\d\s/.test(l));
    expect(tableRows).toHaveLength(3);
    expect(tableRows[0].startsWith(strongest)).toBe(true);
    // the sweep as a circuit file's meta.sweeps entry
    expect(f.meta_sweep.recovery[0][2]).toBeCloseTo(f.components['a0.h2'].recovery, 6);
    expect(f.meta_sweep.value[1][1]).toBeCloseTo(f.components['a1.h1'].metric, 6);
  });

  it('keys an edge sweep by edge name', async () => {
    const small = join(dir, 'two.jsonl');
    writeFileSync(small, readFileSync(DATASET, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    const out = join(dir, 'edges.json');
    const r = await cli(['patch', '--model', MODEL, '--dataset', small, '--sweep', 'edges', '--metric', 'logprob', '--out', out]);
    expect(r.code).toBe(0);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    const graph = new CircuitGraph({ nLayers: 2, nHeads: 4, hasMlp: true, qkv: true });
    expect(Object.keys(f.components)).toEqual(graph.edges.map((e) => e.name));
    expect(f).toMatchObject({ direction: 'denoise', metric: 'logprob', dataset: { n_examples: 2 } });
    // non-edges (a source after its destination) are null in the matrix
    expect(f.meta_sweep.recovery[0][graph.sourceIndex('m1')]).toBeNull();
    const e = f.components['input->a0.h0<v>'];
    expect(e.delta).toBeCloseTo(e.metric - f.corrupted, 6);
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown sweep', ['--sweep', 'heads-by-layer'], /--sweep: unknown sweep 'heads-by-layer' \(expected one of resid, attn-out/],
    ['a neuron layer out of range', ['--sweep', 'neurons:2'], /sweep neurons:2: layer 2 is out of range \(the model has layers 0\.\.1\)/],
    ['a neuron sweep without a layer', ['--sweep', 'neurons'], /neurons:L/],
    ['a missing dataset', ['--sweep', 'heads', '--dataset', '/nonexistent/d.jsonl'], /--dataset: no such file '\/nonexistent\/d.jsonl'/],
    ['an unknown direction', ['--sweep', 'heads', '--direction', 'sideways'], /--direction: expected one of denoise, noise, got 'sideways'/],
    ['an unknown metric', ['--sweep', 'heads', '--metric', 'f1'], /--metric: unknown metric 'f1'/],
    ['a bad batch size', ['--sweep', 'heads', '--batch-size', '0'], /--batch-size: expected a positive integer/],
    ['an unknown ablation', ['--sweep', 'heads', '--ablation', 'resample'], /--ablation: expected one of patch, zero, mean, got 'resample'/],
  ];
  for (const [what, flags, message] of bad) {
    it(`rejects ${what} with a clear error and writes nothing`, async () => {
      const out = join(dir, 'bad.json');
      const args = ['patch', '--model', MODEL, ...(flags.includes('--dataset') ? [] : ['--dataset', DATASET]), '--out', out, ...flags];
      await expect(cli(args)).rejects.toThrow(message);
      await expect(cli(args)).rejects.toBeInstanceOf(CircuitryError);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('reports a bad dataset line by file and line, writing nothing', async () => {
    const broken = join(dir, 'broken.jsonl');
    writeFileSync(broken, readFileSync(DATASET, 'utf8').split('\n').slice(0, 2).join('\n') + '\n{"clean": [1, 2], oops}\n');
    const out = join(dir, 'broken.json');
    await expect(cli(['patch', '--model', MODEL, '--dataset', broken, '--sweep', 'heads', '--out', out])).rejects.toThrow(/broken\.jsonl:3: invalid JSON/);
    expect(existsSync(out)).toBe(false);
  });

  it('rejects a flag given twice', async () => {
    await expect(cli(['patch', '--model', MODEL, '--dataset', DATASET, '--dataset', 'other.jsonl', '--sweep', 'heads', '--out', join(dir, 'x.json')])).rejects.toThrow(/--dataset: given 2 times/);
  });

  it('requires --out and --sweep (usage errors from the parser)', async () => {
    await expect(cli(['patch', '--model', MODEL, '--dataset', DATASET, '--sweep', 'heads'])).rejects.toThrow(/out/);
    await expect(cli(['patch', '--model', MODEL, '--dataset', DATASET, '--out', join(dir, 'x.json')])).rejects.toThrow(/sweep/);
  });
});

describe('the progress display', () => {
  /** A stream that records what is written, posing as a terminal or not. */
  const fakeStream = (tty: boolean) => {
    const chunks: string[] = [];
    const stream = { isTTY: tty, columns: 100, write: (c: string) => (chunks.push(String(c)), true), on: () => stream, removeListener: () => stream };
    return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
  };

  it('stays silent for quick work and draws done/total with an ETA on a terminal once work takes a moment', () => {
    let t = 0;
    const quick = fakeStream(true);
    const p1 = createProgress('sweep', { stream: quick.stream, now: () => t, delayMs: 400 });
    p1.update(0, 10);
    t = 100;
    p1.update(10, 10);
    p1.stop();
    expect(quick.text()).toBe('');

    t = 0;
    const slow = fakeStream(true);
    const p2 = createProgress('sweep', { stream: slow.stream, now: () => t, delayMs: 400 });
    p2.update(0, 10);
    t = 300;
    p2.update(2, 10);
    expect(slow.text()).toBe('');
    t = 900;
    p2.update(3, 10);
    p2.stop();
    expect(slow.text()).toMatch(/sweep .*3\/10.*ETA/);
  });

  it('prints plain lines without a terminal, only for long work', () => {
    let t = 0;
    const log = fakeStream(false);
    const p = createProgress('edges', { stream: log.stream, now: () => t, plainIntervalMs: 10_000 });
    p.update(0, 100);
    t = 5_000;
    p.update(10, 100);
    expect(log.text()).toBe('');
    t = 12_000;
    p.update(40, 100);
    t = 20_000;
    p.update(100, 100);
    p.stop();
    expect(log.text()).toBe('edges: 40/100 (40%), ETA 18 s\nedges: done in 20.0 s\n');
  });
});
