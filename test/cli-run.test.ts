import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY, readJson, flat, maxAbsDiff } from './helpers/fixtures.js';

const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const MODEL = join(TINY, 'model');
const env = { ...process.env, HF_HUB_OFFLINE: '1', HF_HOME: mkdtempSync(join(tmpdir(), 'circuitry-hf-')) };
const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8', env });

describe('circuitry run', () => {
  it('prints the top predictions and writes logits equal to HuggingFace', () => {
    const tokens = readJson<number[][]>(TINY, 'tokens.json')[0];
    const out = join(mkdtempSync(join(tmpdir(), 'circuitry-run-')), 'logits.json');
    const r = run('run', '--model', MODEL, '--tokens', tokens.join(','), '--top', '3', '--logits-out', out, '--backend', 'cpu');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/backend cpu/);
    const logits = JSON.parse(readFileSync(out, 'utf8')) as number[][][];
    const hf = readJson<{ logits: number[][][] }>(TINY, 'logits_hf.json').logits[0];
    expect(maxAbsDiff(flat(logits[0]), flat(hf))).toBeLessThan(1e-4);
    // --json: the top token at each position is the argmax of HF's logits
    const j = JSON.parse(run('run', '--model', MODEL, '--tokens', tokens.slice(0, 4).join(','), '--json').stdout);
    j.predictions.forEach((p: { top: { token: number }[] }, i: number) => {
      expect(p.top[0].token).toBe(hf[i].indexOf(Math.max(...hf[i])));
    });
  });

  it('rejects out-of-range tokens, a model folder without a tokenizer given text, and unknown models', () => {
    const r1 = run('run', '--model', MODEL, '--tokens', '1,2,100');
    expect(r1.status).toBe(1);
    expect(r1.stderr).toMatch(/100.*out of range.*0\.\.99/);
    const r2 = run('run', '--model', MODEL, '--prompt', 'hello');
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/token ids/);
    const r3 = run('run', '--model', 'no-such-model-xyz', '--tokens', '1');
    expect(r3.status).toBe(1);
    expect(r3.stderr).toMatch(/no-such-model-xyz/);
    expect(r3.stderr).toMatch(/built-in models: .*mini-gpt2|planted-induction/);
    const r4 = run('run', '--model', MODEL);
    expect(r4.status).toBe(2);
    expect(r4.stderr).toMatch(/give --prompt TEXT or --tokens 1,2,3/);
  });

  it('names the backend it was asked for and fails clearly on an unknown one', () => {
    const r = run('run', '--model', MODEL, '--tokens', '1,2', '--backend', 'quantum');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown backend 'quantum'.*tensorflow, wasm, cpu/);
    expect(existsSync('quantum')).toBe(false);
  });
});
