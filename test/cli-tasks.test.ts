import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { circuitry } from './helpers/cli.js';

/** `circuitry tasks` as a user runs it: the list, and pairs written as JSONL that read back as the same data. */
describe('circuitry tasks (spawned)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-tasks-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists every task, the planted ones included, each with the models that run it', () => {
    const r = circuitry(['tasks'], dir);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const names = lines.filter((l) => !l.startsWith(' ')).map((l) => l.split(/\s+/u)[0]);
    expect(names).toEqual(['ioi', 'greater-than', 'induction', 'docstring', 'both-colors', 'first-color', 'recall-first']);
    const models = (task: string) => lines[lines.findIndex((l) => l.startsWith(`${task} `)) + 1].trim();
    expect(models('ioi')).toBe('models: mini-gpt2, mini-gpt2-l4h8, mini-llama, HuggingFace GPT-2 models');
    expect(models('induction')).toMatch(/^models: mini-gpt2, mini-gpt2-l4h8, mini-llama, planted-induction/u);
    expect(models('both-colors')).toBe('models: planted-and');
    expect(models('first-color')).toBe('models: planted-or');
    expect(models('recall-first')).toBe('models: planted-negative');
  });

  it('writes pairs as JSONL (text, ids beside) that --dataset reads back to the same data as --task', () => {
    const pairs = join(dir, 'ioi.jsonl');
    const w = circuitry(['tasks', 'ioi', '-n', '6', '--seed', '3', '--task-option', 'corruption=name-swap', '--out', pairs], dir);
    expect(w.status, w.stderr).toBe(0);
    const rows = readFileSync(pairs, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(6);
    expect(typeof rows[0].clean).toBe('string');
    expect(rows[0].ids.clean.length).toBeGreaterThan(5);
    // an edited file is what the user feeds back: here, unchanged
    const fromFile = circuitry(['patch', '--model', 'mini-gpt2', '--dataset', pairs, '--sweep', 'resid', '--out', join(dir, 'file.json')], dir);
    const fromTask = circuitry(['patch', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '6', '--seed', '3', '--task-option', 'corruption=name-swap', '--sweep', 'resid', '--out', join(dir, 'task.json')], dir);
    expect(fromFile.status, fromFile.stderr).toBe(0);
    expect(fromTask.status, fromTask.stderr).toBe(0);
    const a = JSON.parse(readFileSync(join(dir, 'file.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(dir, 'task.json'), 'utf8'));
    expect(a.dataset.hash).toBe(b.dataset.hash);
    expect(a.dataset.source).toBe(pairs);
    expect(b.dataset.source).toMatch(/^ioi .*"seed":3.*"corruption":"name-swap"/u);
    expect(a.components).toEqual(b.components);
    // a different seed is different data
    const other = join(dir, 'other.jsonl');
    expect(circuitry(['tasks', 'ioi', '-n', '6', '--seed', '4', '--out', other], dir).status).toBe(0);
    expect(readFileSync(other, 'utf8')).not.toBe(readFileSync(pairs, 'utf8'));
  });

  it("writes a planted task's pairs with its model's words; an edited pair is read as edited", () => {
    const pairs = join(dir, 'and.jsonl');
    const w = circuitry(['tasks', 'both-colors', '-n', '4', '--out', pairs], dir);
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toContain('for planted-and');
    const rows = readFileSync(pairs, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows[0].clean).toMatch(/^<bos> /u);
    expect(rows[0].answer).toBe('yes');
    // edit one answer: it must be read as written
    rows[0].answer = 'no';
    rows[0].wrong = 'yes';
    writeFileSync(pairs, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const r = circuitry(['patch', '--model', 'planted-and', '--dataset', pairs, '--sweep', 'resid', '--out', join(dir, 'and.json')], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`dataset: ${pairs} (4 pairs of 8 tokens)`);
  });

  it('bad requests fail with the flag named', () => {
    const r = circuitry(['tasks', 'nope', '-n', '4', '--out', join(dir, 'x.jsonl')], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("tasks: unknown task 'nope'");
    const o = circuitry(['tasks', 'both-colors', '--task-option', 'x=1', '--out', join(dir, 'x.jsonl')], dir);
    expect(o.status).toBe(1);
    expect(o.stderr).toContain("planted-and's own data takes no options");
  });
});
