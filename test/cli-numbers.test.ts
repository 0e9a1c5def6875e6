import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { circuitry } from './helpers/cli.js';
import { randomCircuit } from './helpers/report-fixtures.js';
import { readNumber } from '../src/cli/flags.js';

/**
 * One validation of numbers, the same words everywhere: the flag named, what it takes, the value
 * quoted as typed. Each case fails before any model loads (no backend line) with exit code 1.
 */
describe('numbers on the command line', () => {
  let dir: string;
  let circuit: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-numbers-'));
    circuit = join(dir, 'c.json');
    writeFileSync(circuit, JSON.stringify(randomCircuit(2, 4, 1, 20)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const task = ['--model', 'mini-gpt2', '--out', 'o.json', '--task', 'ioi', '-n', '4'];
  const cases: [string[], string][] = [
    [['acdc', ...task, '--threshold', '0.01', '--batch-size', '0'], "--batch-size: expected a positive integer, got '0'"],
    [['acdc', ...task, '--threshold', '0.01', '--batch-size', '-1'], "--batch-size: expected a positive integer, got '-1'"],
    [['acdc', ...task, '--threshold', '0.01', '--batch-size', '2.5'], "--batch-size: expected a positive integer, got '2.5'"],
    [['acdc', ...task, '--threshold', '-1'], "--threshold: expected a non-negative number, got '-1'"],
    [['attribute', ...task, '--threshold', 'abc'], "--threshold: expected a finite number, got 'abc'"],
    [['attribute', ...task, '--batch-size', '0'], "--batch-size: expected a positive integer, got '0'"],
    [['attribute', ...task, '--method', 'eap-ig', '--steps', '0'], "--steps: expected a positive integer ≤ 1000, got '0'"],
    [['attribute', ...task, '--top', '-3'], "--top: expected a non-negative integer, got '-3'"],
    [['patch', ...task, '--sweep', 'heads', '--batch-size', 'x'], "--batch-size: expected a positive integer, got 'x'"],
    [['patch', ...task, '--sweep', 'heads', '--significance', '--alpha', '2'], "--alpha: expected a number from 0 to 1, got '2'"],
    [['search', ...task, '--max-keep', '0'], "--max-keep: expected a positive integer, got '0'"],
    [['search', ...task, '--floor', 'NaN'], "--floor: expected a non-negative number, got 'NaN'"],
    [['direction', ...task, '--site', 'a1.h2', '--steps', '1e400'], "--steps: expected a positive integer, got '1e400'"],
    [['search', '--model', 'mini-gpt2', '--out', 'o.json', '--task', 'ioi', '-n', '0'], "-n: expected a positive integer, got '0'"],
    [['search', '--model', 'mini-gpt2', '--out', 'o.json', '--task', 'ioi', '--seed', '1.5'], "--seed: expected an integer, got '1.5'"],
    [['trace', '--model', 'mini-gpt2', '--out', 'o.json', '--prompt', 'When Mary', '--answer', 'Mary', '--samples', 'ten'], "--samples: expected a positive integer ≤ 4096, got 'ten'"],
    [['steer', '--model', 'mini-gpt2', '--layer', '1', '--positive-prompt', 'Mary', '--negative-prompt', 'John', '--strength', 'strong', '--prompt', 'When'], "--strength: expected a finite number, got 'strong'"],
    [['evaluate', 'c.json', '--batch-size', '0'], "--batch-size: expected a positive integer, got '0'"],
    [['report', 'c.json', '--top-edges', '0'], "--top-edges: expected a positive integer, got '0'"],
    [['run', '--model', 'mini-gpt2', '--prompt', 'When', '--top', '0'], "--top: expected a positive integer, got '0'"],
    [['tasks', 'ioi', '-n', '-2', '--out', 'p.jsonl'], "-n: expected a positive integer, got '-2'"],
  ];
  for (const [argv, message] of cases) {
    it(`${argv[0]} ${argv.slice(-2).join(' ')}`, () => {
      const r = circuitry(argv, dir, 60_000);
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(1);
      expect(r.stderr.trim()).toBe(`circuitry: error: ${message}`);
      expect(r.stdout).not.toMatch(/backend/u);
    });
  }

  it('the pairs flags: exactly one of --dataset and --task, and no task flags beside a file', () => {
    const both = circuitry(['patch', '--model', 'mini-gpt2', '--task', 'ioi', '--dataset', 'c.json', '--sweep', 'heads', '--out', 'o.json'], dir, 60_000);
    expect(both.stderr).toContain('give --dataset FILE or --task NAME, not both');
    const none = circuitry(['patch', '--model', 'mini-gpt2', '--sweep', 'heads', '--out', 'o.json'], dir, 60_000);
    expect(none.stderr).toContain("give the pairs: --dataset FILE.jsonl or --task NAME (see 'circuitry tasks')");
    const seeded = circuitry(['attribute', '--model', 'mini-gpt2', '--dataset', 'c.json', '--seed', '3', '--out', 'o.json'], dir, 60_000);
    expect(seeded.stderr).toContain('--seed: applies to --task; a --dataset file holds its own pairs');
    const unknown = circuitry(['direction', '--model', 'mini-gpt2', '--task', 'ioi2', '--site', 'a1.h2', '--out', 'o.json'], dir, 60_000);
    expect(unknown.stderr).toContain("--task: unknown task 'ioi2'; the tasks are ioi, greater-than, induction, docstring, both-colors, first-color, recall-first");
    const option = circuitry(['patch', '--model', 'mini-gpt2', '--task', 'ioi', '--task-option', 'corruption', '--sweep', 'heads', '--out', 'o.json'], dir, 60_000);
    expect(option.stderr).toContain("--task-option: expected KEY=VALUE, got 'corruption'");
    for (const r of [both, none, seeded, unknown, option]) expect(r.status).toBe(1);
  });

  it('readNumber: one phrase per kind; numbers that yargs already parsed pass through', () => {
    expect(readNumber({ kk: '3' }, 'kk', 'count')).toBe(3);
    expect(readNumber({ kk: 3 }, 'kk', 'count')).toBe(3);
    expect(readNumber({ kk: ' 0.5 ' }, 'kk', 'fraction')).toBe(0.5);
    expect(readNumber({}, 'kk', 'count')).toBeUndefined();
    expect(() => readNumber({ kk: '' }, 'kk', 'finite')).toThrow("--kk: expected a finite number, got ''");
    expect(() => readNumber({ kk: 'Infinity' }, 'kk', 'finite')).toThrow("--kk: expected a finite number, got 'Infinity'");
    expect(() => readNumber({ kk: true }, 'kk', 'count')).toThrow("--kk: expected a positive integer, got 'true'");
    expect(() => readNumber({ n: 0 }, 'n', 'count')).toThrow("-n: expected a positive integer, got '0'");
  });
});
