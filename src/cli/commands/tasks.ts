import type { Command } from './types.js';

/** `circuitry tasks [name]`: the built-in tasks one line each; with a name, its options and examples. */
export const tasksCommand: Command = {
  command: 'tasks [name]',
  describe: 'list the built-in tasks (with a task name: its options and example pairs)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', describe: 'a task to show in detail' })
      .option('examples', { type: 'number', default: 3, describe: 'example pairs to show with a task name' })
      .option('tokenizer', { choices: ['zoo', 'gpt2'] as const, default: 'zoo' as const, describe: 'tokenizer of the examples: the zoo word vocabulary or GPT-2 (r50k)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the examples' }),
  run: async (args) => {
    const { TASKS, taskByName, taskOptionHelp } = await import('../../tasks/index.js');
    const name = args.name;
    if (typeof name !== 'string') {
      const width = Math.max(...Object.keys(TASKS).map((k) => k.length));
      for (const t of Object.values(TASKS)) console.log(`${t.name.padEnd(width)}  ${t.describe}`);
      return 0;
    }
    const spec = taskByName(name);
    console.log(`${spec.name}: ${spec.describe}\n\noptions:`);
    const help = taskOptionHelp(spec);
    const width = Math.max(...Object.keys(help).map((k) => k.length));
    for (const [k, v] of Object.entries(help)) console.log(`  ${k.padEnd(width)}  ${v}`);
    const n = Number(args.examples);
    if (!(n > 0)) return 0;
    const { R50kTokenizer, WordTokenizer } = await import('../../model/tokenizer.js');
    const { ZOO_VOCAB } = await import('../../zoo/vocab.js');
    const tokenizer = args.tokenizer === 'gpt2' ? new R50kTokenizer() : new WordTokenizer(ZOO_VOCAB);
    const ds = spec.generate(tokenizer, { n: Math.min(Math.floor(n), 100), seed: Number(args.seed) });
    console.log(`\nexamples (${tokenizer.kind} tokenizer, ${ds.seqLen} tokens each; ${ds.source}):`);
    for (const t of ds.text ?? []) {
      console.log(`  clean      ${JSON.stringify(t.clean)}\n  corrupted  ${JSON.stringify(t.corrupted)}\n  answer     ${JSON.stringify(t.answer)}   wrong ${JSON.stringify(t.wrong)}\n`);
    }
    return 0;
  },
};
