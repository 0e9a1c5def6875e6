import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import { outFile, readNumber, str } from '../flags.js';
import { DEFAULT_N, DEFAULT_SEED, numberFlag } from '../options.js';

/**
 * `circuitry tasks`: every task one line each, with the built-in models that can run it.
 * `circuitry tasks NAME`: its options and example pairs; with --out, its pairs as JSONL (the
 * --dataset format, so they can be edited and fed back).
 */
export const tasksCommand: Command = {
  command: 'tasks [name]',
  describe: 'list the tasks and the models that run them; with a name, its options and examples, or (--out) its pairs as JSONL',
  builder: (y) =>
    y
      .parserConfiguration({ 'duplicate-arguments-array': true })
      .positional('name', { type: 'string', describe: 'a task to show in detail or write' })
      .option('n', { ...numberFlag('pairs to write with --out'), defaultDescription: String(DEFAULT_N) })
      .option('seed', numberFlag('seed of the generator (the same as --seed of the other commands)', DEFAULT_SEED))
      .option('task-option', { type: 'string', array: true, requiresArg: true, describe: 'a task option as KEY=VALUE, as for --task' })
      .option('model', { type: 'string', requiresArg: true, describe: "the model whose tokenizer writes the pairs (default: the task's first model)" })
      .option('out', { type: 'string', requiresArg: true, describe: 'write the pairs here as JSONL (text, and the ids beside it)' })
      .option('examples', numberFlag('example pairs to show with a task name (without --out)', 3))
      .option('tokenizer', { choices: ['zoo', 'gpt2'] as const, default: 'zoo' as const, describe: 'tokenizer of the examples: the zoo word vocabulary or GPT-2 (r50k)' })
      .example('circuitry tasks', 'every task, planted ones included, with the models that have its words')
      .example('circuitry tasks ioi -n 16 --out pairs.jsonl', '16 IOI pairs for mini-gpt2, ready for --dataset pairs.jsonl'),
  run: (args) => runTasks(args),
};

async function runTasks(args: Record<string, unknown>): Promise<number> {
  const name = str(args, 'name');
  const examples = readNumber(args, 'examples', 'index') ?? 3;
  const seed = readNumber(args, 'seed', 'integer') ?? DEFAULT_SEED;
  const n = readNumber(args, 'n', 'count');
  const out = outFile(args, false, 'out', 'the JSONL file to write');
  const { taskCatalog, checkTaskName } = await import('../../tasks/catalog.js');
  if (name === undefined) {
    if (out !== undefined || n !== undefined) throw new CircuitryError('--out and -n: name the task to write, e.g. circuitry tasks ioi -n 16 --out pairs.jsonl');
    const catalog = taskCatalog();
    const width = Math.max(...catalog.map((t) => t.name.length));
    for (const t of catalog) {
      console.log(`${t.name.padEnd(width)}  ${t.describe}`);
      const models = t.kind === 'generated' ? [...t.models, 'HuggingFace GPT-2 models'] : t.models;
      console.log(`${' '.repeat(width)}  models: ${models.join(', ')}`);
    }
    return 0;
  }
  checkTaskName(name, 'tasks');
  const entry = taskCatalog().find((t) => t.name === name)!;
  if (out !== undefined) return writePairs(args, entry, { n: n ?? DEFAULT_N, seed }, out);
  if (n !== undefined) throw new CircuitryError('-n: applies with --out (use --examples to show more pairs)');
  return showTask(entry, examples, seed, args.tokenizer === 'gpt2' ? 'gpt2' : 'zoo');
}

async function writePairs(args: Record<string, unknown>, entry: { name: string; models: readonly string[] }, size: { n: number; seed: number }, out: string): Promise<number> {
  const { readData } = await import('../options.js');
  // the same task flags as every other command (--task-option …), read by the same function
  const choice = (await readData({ task: entry.name, n: size.n, seed: size.seed, 'task-option': args['task-option'] }))!;
  const modelName = str(args, 'model') ?? entry.models[0];
  if (!modelName) throw new CircuitryError(`tasks ${entry.name}: no built-in model has its words; give --model`);
  const [{ zooModel }, { WordTokenizer }, { taskDataset, datasetToJsonl }, { checkDataset }, { writeFileAtomic }] = await Promise.all([
    import('../../zoo/index.js'),
    import('../../model/tokenizer.js'),
    import('../../tasks/catalog.js'),
    import('../../tasks/index.js'),
    import('../../io/files.js'),
  ]);
  await import('../../zoo/builtin.js');
  const zoo = zooModel(modelName);
  let target;
  if (zoo) target = { tokenizer: new WordTokenizer(zoo.vocab), zoo };
  else {
    // any other model: its own tokenizer (the weights load too; the zoo needs none)
    const { backendAndModel } = await import('../load.js');
    const { loaded } = await backendAndModel(args, modelName);
    loaded.model.dispose();
    target = { tokenizer: loaded.tokenizer };
  }
  const ds = taskDataset(target, choice.task!);
  checkDataset(ds, target.tokenizer.vocabSize, `task ${entry.name}`);
  writeFileAtomic(out, datasetToJsonl(ds, target.tokenizer));
  console.log(`wrote ${out}: ${ds.clean.length} ${entry.name} pairs of ${ds.seqLen} tokens for ${modelName} (${ds.source}); use it with --dataset ${out}`);
  return 0;
}

async function showTask(entry: { name: string; describe: string; kind: string; models: readonly string[] }, examples: number, seed: number, tokenizerKind: 'zoo' | 'gpt2'): Promise<number> {
  const [{ TASKS, taskOptionHelp }, { R50kTokenizer, WordTokenizer }, { ZOO_VOCAB }, { zooModel }, { taskDataset }] = await Promise.all([
    import('../../tasks/index.js'),
    import('../../model/tokenizer.js'),
    import('../../zoo/vocab.js'),
    import('../../zoo/index.js'),
    import('../../tasks/catalog.js'),
  ]);
  console.log(`${entry.name}: ${entry.describe}\nmodels: ${entry.models.join(', ')}`);
  if (entry.kind === 'generated') {
    console.log('\noptions (--task-option KEY=VALUE; -n and --seed for n and seed):');
    const help = taskOptionHelp(TASKS[entry.name]);
    const width = Math.max(...Object.keys(help).map((k) => k.length));
    for (const [k, v] of Object.entries(help)) console.log(`  ${k.padEnd(width)}  ${v}`);
  } else console.log('\noptions: n and seed only (-n, --seed)');
  if (examples === 0) return 0;
  const zoo = entry.kind === 'planted' ? zooModel(entry.models[0]) : undefined;
  const tokenizer = zoo ? new WordTokenizer(zoo.vocab) : tokenizerKind === 'gpt2' ? new R50kTokenizer() : new WordTokenizer(ZOO_VOCAB);
  const ds = taskDataset({ tokenizer, ...(zoo ? { zoo } : {}) }, { name: entry.name, n: Math.min(examples, 100), seed });
  console.log(`\nexamples (${tokenizer.kind} tokenizer, ${ds.seqLen} tokens each; ${ds.source}):`);
  for (const t of ds.text ?? []) {
    console.log(`  clean      ${JSON.stringify(t.clean)}\n  corrupted  ${JSON.stringify(t.corrupted)}\n  answer     ${JSON.stringify(t.answer)}   wrong ${JSON.stringify(t.wrong)}\n`);
  }
  return 0;
}
