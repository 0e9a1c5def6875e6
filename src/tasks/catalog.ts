import { CircuitryError } from '../errors.js';
import { WordTokenizer, type Tokenizer } from '../model/tokenizer.js';
import { zooModels, type ZooModel } from '../zoo/index.js';
import '../zoo/builtin.js';
import type { TaskDataset } from './dataset.js';
import { TASKS, generateTask } from './index.js';

/**
 * Every task a run can name: the generated ones (src/tasks) and the planted zoo models' own
 * tasks (both-colors, first-color, recall-first, …), each with the built-in models that can
 * run it — the planted model that defines it, or the models whose vocabulary has its words.
 */
export interface TaskEntry {
  readonly name: string;
  readonly describe: string;
  readonly kind: 'generated' | 'planted';
  readonly models: readonly string[];
}

function canGenerate(task: string, model: ZooModel): boolean {
  try {
    generateTask(task, new WordTokenizer(model.vocab), { n: 4, seed: 0 });
    return true;
  } catch {
    return false;
  }
}

export function taskCatalog(): TaskEntry[] {
  const zoo = zooModels();
  const generated: TaskEntry[] = Object.values(TASKS).map((t) => ({
    name: t.name,
    describe: t.describe,
    kind: 'generated',
    // models whose words it is generated in first (the default of `tasks NAME --out`), then planted models with their own data for it
    models: [...zoo.filter((m) => canGenerate(t.name, m)), ...zoo.filter((m) => m.dataset && m.tasks.includes(t.name) && !canGenerate(t.name, m))].map((m) => m.name),
  }));
  const planted = new Map<string, { describe: string; models: string[] }>();
  for (const m of zoo) {
    if (!m.dataset) continue;
    for (const task of m.tasks) {
      if (Object.hasOwn(TASKS, task)) continue;
      const e = planted.get(task) ?? { describe: `the planted task of ${m.name}: ${m.describe.replace(/^planted circuit: /u, '')}`, models: [] };
      e.models.push(m.name);
      planted.set(task, e);
    }
  }
  return [...generated, ...[...planted].map(([name, e]) => ({ name, describe: e.describe, kind: 'planted' as const, models: e.models }))];
}

/** Names of every task (for checking a --task flag before any model loads). */
export function taskNames(): string[] {
  return taskCatalog().map((t) => t.name);
}

/** An error listing the tasks unless `name` is one. */
export function checkTaskName(name: string, where = '--task'): void {
  const names = taskNames();
  if (!names.includes(name)) throw new CircuitryError(`${where}: unknown task '${name}'; the tasks are ${names.join(', ')} (see 'circuitry tasks')`);
}

/** What a built-in task runs on: the model's tokenizer and, for zoo models, the zoo entry. */
export interface TaskTarget {
  readonly tokenizer: Tokenizer;
  readonly zoo?: ZooModel;
}

/**
 * A task's pairs for one model: a planted zoo model's own data for its tasks, or the generator
 * with the model's tokenizer. Deterministic from n and seed.
 */
export function taskDataset(target: TaskTarget, task: { name: string; n: number; seed: number; options?: Readonly<Record<string, unknown>> }): TaskDataset {
  const { name, n, seed, options = {} } = task;
  const zoo = target.zoo;
  if (zoo?.dataset && zoo.tasks.includes(name)) {
    if (Object.keys(options).length > 0) throw new CircuitryError(`task ${name}: ${zoo.name}'s own data takes no options (only n and seed); got ${Object.keys(options).join(', ')}`);
    const d = zoo.dataset(name, { n, seed });
    const show = (ids: readonly number[]) => target.tokenizer.decode(ids);
    return {
      name,
      source: `zoo:${zoo.name}:${name}(n=${n}, seed=${seed})`,
      ...d,
      seqLen: d.clean[0]?.length ?? 0,
      text: d.clean.map((c, i) => ({ clean: show(c), corrupted: show(d.corrupted[i]), answer: show(d.answers[i]), wrong: show(d.wrongs[i]) })),
    };
  }
  if (!Object.hasOwn(TASKS, name)) {
    const owners = zooModels().filter((m) => m.tasks.includes(name)).map((m) => m.name);
    if (owners.length > 0) throw new CircuitryError(`task ${name} is the planted task of ${owners.join(', ')}; run it on that model`);
  }
  return generateTask(name, target.tokenizer, { n, seed, ...options });
}

/**
 * The pairs as JSONL, one pair a line in the dataset format (`circuitry … --dataset` reads it
 * back to the same token ids): text fields as the tokenizer writes them, and the ids beside them
 * under "ids" for reference. A prompt whose text does not encode back to its ids is written as
 * ids, so the file always reads back to the same data.
 */
export function datasetToJsonl(ds: TaskDataset, tokenizer: Tokenizer): string {
  const same = (ids: readonly number[], text: string): boolean => {
    try {
      const back = tokenizer.encode(text);
      return back.length === ids.length && back.every((x, i) => x === ids[i]);
    } catch {
      return false;
    }
  };
  const prompt = (ids: readonly number[]) => {
    const text = tokenizer.decode(ids);
    return same(ids, text) ? text : [...ids];
  };
  const tokens = (ids: readonly number[]) => {
    const each = ids.map((id) => {
      const text = tokenizer.decode([id]);
      return same([id], text) ? text : id;
    });
    return each.length === 1 ? each[0] : each;
  };
  const lines: string[] = [];
  for (let i = 0; i < ds.clean.length; i++) {
    lines.push(
      JSON.stringify({
        clean: prompt(ds.clean[i]),
        corrupted: prompt(ds.corrupted[i]),
        answer: tokens(ds.answers[i]),
        wrong: tokens(ds.wrongs[i]),
        ids: { clean: ds.clean[i], corrupted: ds.corrupted[i], answer: ds.answers[i], wrong: ds.wrongs[i] },
      }),
    );
  }
  return lines.join('\n') + '\n';
}
