import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import type { Command } from '../src/cli/commands/types.js';
import { traceCommand } from '../src/cli/commands/trace.js';
import { steerCommand } from '../src/cli/commands/steer.js';
import { directionCommand } from '../src/cli/commands/direction.js';
import { searchCommand } from '../src/cli/commands/search.js';
import { CircuitryError } from '../src/errors.js';

/** Runs `circuitry <argv>` in-process with the intervention commands registered (as src/cli/main.ts does). */
async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  let code = 0;
  try {
    let parser = yargs(argv).option('backend', { type: 'string', global: true }).strict();
    for (const c of [traceCommand, steerCommand, directionCommand, searchCommand] as Command[]) {
      parser = parser.command({
        command: c.command,
        describe: c.describe,
        builder: c.builder,
        handler: async (args: Record<string, unknown>) => {
          code = (await c.run(args)) ?? 0;
        },
      });
    }
    await parser
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

describe('intervention commands', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-interventions-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trace writes layer × position maps that peak at the planted MLP on a noised word', async () => {
    const out = join(dir, 'trace.json');
    const r = await cli(['trace', '--backend', 'wasm', '--model', 'planted-and', '--prompt', '<bos> red blue cat dog fox owl bee', '--answer', 'yes', '--noise-positions', '1,2', '--samples', '6', '--seed', '1', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^backend: wasm$/m);
    expect(r.out).toMatch(/prob of the answer: clean 0\.\d+, corrupted 0\.\d+/);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.noise).toMatchObject({ positions: [1, 2], sigma_scale: 3, samples: 6, seed: 1 });
    expect(Object.keys(f.maps)).toEqual(['resid_pre', 'resid_post', 'attn_out', 'mlp_out']);
    expect(f.maps.mlp_out.rows).toEqual(['L0', 'L1']);
    expect(f.maps.mlp_out.cols).toEqual(['0:<bos>', '1:red', '2:blue', '3:cat', '4:dog', '5:fox', '6:owl', '7:bee']);
    expect(f.maps.mlp_out.restored).toHaveLength(2);
    expect(f.maps.mlp_out.restored[0]).toHaveLength(8);
    expect(f.maps.mlp_out.peak).toMatchObject({ layer: 0, position: 2 });
    expect(f.meta_sweeps.map((s: { kind: string }) => s.kind)).toEqual(['trace:resid_pre', 'trace:resid_post', 'trace:attn_out', 'trace:mlp_out']);
  });

  it('trace: bad input fails with a clear message and writes nothing', async () => {
    const out = join(dir, 'bad-trace.json');
    const base = ['trace', '--backend', 'wasm', '--model', 'planted-and', '--prompt', '<bos> red blue cat', '--out', out];
    await expect(cli([...base, '--answer', 'yes', '--noise-positions', '1,4'])).rejects.toThrow(/--noise-positions: position 4 is outside the prompt \(positions 0..3\)/);
    await expect(cli([...base, '--answer', 'yes no'])).rejects.toThrow(/--answer: 'yes no' encodes to 2 tokens/);
    await expect(cli([...base])).rejects.toThrow(/give the answer as --answer TOKEN or --answer-id ID/);
    await expect(cli([...base, '--answer', 'yes', '--sigma', '0'])).rejects.toThrow(/--sigma: expected a positive number/);
    await expect(cli([...base, '--answer', 'yes', '--kinds', 'resid_pre,heads'])).rejects.toThrow(/--kinds: unknown state 'heads'/);
    await expect(cli([...base.slice(0, 6), '--tokens', '0,1,99', '--answer-id', '1', '--out', out])).rejects.toThrow(CircuitryError);
    expect(readdirSync(dir).filter((n) => n.startsWith('bad-trace') || n.endsWith('.tmp'))).toEqual([]);
  });

  it('steer prints distributions with and without the vector, saves it, and reuses it', async () => {
    const vec = join(dir, 'red-cat.json');
    const out = join(dir, 'steer.json');
    const args = ['steer', '--backend', 'wasm', '--model', 'planted-or', '--layer', '0', '--strength', '1', '--positions', '1', '--prompt', '<bos> cat dog fox owl bee elk red', '--generate', '2', '--top', '3'];
    const r = await cli([...args, '--positive-prompt', '<bos> red', '--negative-prompt', '<bos> cat', '--save-vector', vec, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/unsteered\s+steered/);
    expect(r.out).toMatch(/^"no" 0\.\d+\s+"yes" 0\.\d+$/m);
    expect(r.out).toMatch(/steered: {3}<bos> cat dog fox owl bee elk red ⟶ yes yes/);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.unsteered.top[0].token).toBe('no');
    expect(f.steered.top[0].token).toBe('yes');
    expect(f.steering).toMatchObject({ hook: 'blocks.0.hook_resid_pre', layer: 0, strength: 1, positions: [1] });
    const v = JSON.parse(readFileSync(vec, 'utf8'));
    expect(v.vector).toHaveLength(64);
    // the saved vector gives the same steering; prompt-set files give it too
    const again = await cli([...args.filter((a, i) => !(a === '--layer' || args[i - 1] === '--layer')), '--vector', vec]);
    expect(again.out.split('\n').filter((l) => l.startsWith('"'))).toEqual(r.out.split('\n').filter((l) => l.startsWith('"')));
    writeFileSync(join(dir, 'pos.txt'), '<bos> red\n\n<bos> blue\n');
    writeFileSync(join(dir, 'neg.jsonl'), '"<bos> cat"\n[0, 10]\n');
    const sets = await cli([...args, '--positive', join(dir, 'pos.txt'), '--negative', join(dir, 'neg.jsonl')]);
    expect(sets.out).toMatch(/^"no" 0\.\d+\s+"yes" 0\.\d+$/m);
    // zero strength: both columns agree
    const zero = await cli([...args.map((a, i) => (args[i - 1] === '--strength' ? '0' : a)), '--positive-prompt', '<bos> red', '--negative-prompt', '<bos> cat']);
    expect(zero.out).toMatch(/KL\(steered ‖ unsteered\) of the next token: 0\.0000 nats/);
  });

  it('steer: bad input fails with a clear message', async () => {
    const args = ['steer', '--backend', 'wasm', '--model', 'planted-or', '--strength', '1', '--prompt', '<bos> cat dog'];
    await expect(cli([...args, '--layer', '2', '--positive-prompt', '<bos> red', '--negative-prompt', '<bos> cat'])).rejects.toThrow(/layer 2 is out of range: the model has layers 0..1/);
    await expect(cli([...args, '--layer', '0', '--positive-prompt', '<bos> red'])).rejects.toThrow(/--positive-prompt and --negative-prompt go together/);
    await expect(cli([...args, '--layer', '0', '--positive-prompt', '<bos> red', '--negative-prompt', '<bos> cat', '--positions', '5'])).rejects.toThrow(/--positions: position 5 is outside the prompt/);
    // a vector of the wrong width for its hook
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ layer: 0, hook: 'blocks.0.mlp.hook_post', vector: new Array(64).fill(0.1) }));
    await expect(cli([...args, '--vector', wrong])).rejects.toThrow(/steering vector of width 64 does not fit blocks.0.mlp.hook_post, whose activations are 256 wide/);
    writeFileSync(join(dir, 'bad.jsonl'), '"<bos> red"\n{"x": 1}\n');
    await expect(cli([...args, '--layer', '0', '--positive', join(dir, 'bad.jsonl'), '--negative', join(dir, 'bad.jsonl')])).rejects.toThrow(/--positive .*bad\.jsonl:2: expected a string or a non-empty array of integer token ids/);
    await expect(cli([...args, '--layer', '0', '--positive', join(dir, 'nope.txt'), '--negative', join(dir, 'nope.txt')])).rejects.toThrow(/--positive: no such file/);
  });

  it('direction finds a bounded vector that recovers at least as much as the clean patch', async () => {
    const out = join(dir, 'direction.json');
    const r = await cli(['direction', '--backend', 'wasm', '--model', 'planted-and', '--task', 'both-colors', '--n', '6', '--site', 'm0@2', '--steps', '60', '--init-seed', '3', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/site m0@2 \(blocks\.0\.hook_mlp_out\)/);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.recovery).toBeGreaterThanOrEqual(f.patch.recovery - 1e-3);
    expect(f.norm).toBeLessThanOrEqual(f.radius * (1 + 1e-5));
    expect(f.vector).toHaveLength(64);
    expect(f.shape).toEqual([1, 64]);
    await expect(cli(['direction', '--backend', 'wasm', '--model', 'planted-and', '--task', 'both-colors', '--n', '4', '--site', 'a3.h0', '--out', out])).rejects.toThrow(/--site: layer 3 in 'a3.h0' is out of range/);
  });

  it('search records every level and the passes against the full sweep', async () => {
    const out = join(dir, 'search.json');
    const r = await cli(['search', '--backend', 'wasm', '--model', 'planted-and', '--task', 'both-colors', '--n', '6', '--direction', 'noise', '--finest', 'heads', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/components\s+\d+ patched,\s+2 kept: a0\.h2@2 1\.0+, a1\.h1@7 1\.0+/);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.levels.map((l: { level: string }) => l.level)).toEqual(['layers', 'positions', 'components']);
    expect(f.kept.map((c: { name: string }) => c.name).sort()).toEqual(['a0.h2@2', 'a1.h1@7']);
    // heads only: the full sweep is 64 components, one stacked pass; the levels patch 36 of them in three
    expect(f.full_sweep.components).toBe(2 * 8 * 4);
    expect(f.evaluated).toBe(4 + 3 * 8 + 2 * 4);
    expect(f.patched_fraction).toBeCloseTo(36 / 64, 12);
    expect(f.pass_fraction).toBeCloseTo((f.forward_passes + f.cache_passes) / (f.full_sweep.forward_passes + f.full_sweep.cache_passes), 12);
    await expect(cli(['search', '--backend', 'wasm', '--model', 'planted-and', '--task', 'both-colors', '--floor', '-1', '--out', out])).rejects.toThrow(/--floor: expected a non-negative number/);
  });
});
