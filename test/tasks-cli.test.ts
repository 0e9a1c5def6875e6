import { describe, it, expect, vi, afterEach } from 'vitest';
import { CircuitryError } from '../src/errors.js';
import { tasksCommand } from '../src/cli/commands/tasks.js';

afterEach(() => vi.restoreAllMocks());

async function output(args: Record<string, unknown>): Promise<{ code: number | void; lines: string[] }> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...xs: unknown[]) => void lines.push(xs.join(' ')));
  const code = await tasksCommand.run(args);
  return { code, lines: lines.join('\n').split('\n') };
}

describe('circuitry tasks', () => {
  it('lists each task on one line, its models on the next', async () => {
    const { code, lines } = await output({});
    expect(code).toBe(0);
    expect(lines).toHaveLength(14);
    expect(lines.filter((l) => !l.startsWith(' ')).map((l) => l.split(/\s+/u)[0])).toEqual(['ioi', 'greater-than', 'induction', 'docstring', 'both-colors', 'first-color', 'recall-first']);
    expect(lines[0]).toContain('Wang et al. 2022');
    expect(lines[1].trim()).toMatch(/^models: mini-gpt2/u);
  });

  it('with a task name shows its options and example pairs', async () => {
    const { code, lines } = await output({ name: 'greater-than', examples: 2, tokenizer: 'zoo', seed: 0 });
    expect(code).toBe(0);
    const text = lines.join('\n');
    expect(text).toContain('minYear');
    expect(text).toContain('examples (word tokenizer, 12 tokens each');
    expect(lines.filter((l) => l.trim().startsWith('clean')).length).toBe(2);
    expect(text).toMatch(/clean {6}"The [a-z]+ lasted from the year 17 \d\d to the year 17"/u);
  });

  it('an unknown task is an error listing the tasks', async () => {
    await expect(tasksCommand.run({ name: 'ioii' })).rejects.toThrow(CircuitryError);
    await expect(tasksCommand.run({ name: 'ioii' })).rejects.toThrow(/ioi, greater-than, induction, docstring, both-colors, first-color, recall-first/u);
  });
});
