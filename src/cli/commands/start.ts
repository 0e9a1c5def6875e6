import type { Command } from './types.js';

/** The pipelines `npm start` runs: every task of the default trained zoo model. */
export const DEFAULT_PIPELINES = ['pipelines/ioi.yaml', 'pipelines/greater-than.yaml', 'pipelines/induction.yaml'];

export const startCommand: Command = {
  command: 'start',
  describe: 'the quickstart: discover the circuits of every task of the built-in trained model, write graphs/, reports/ and a cross-task comparison',
  builder: (y) =>
    y
      .option('pipelines', { type: 'array', string: true, default: DEFAULT_PIPELINES, describe: 'pipeline files to run' })
      .option('compare-out', { type: 'string', default: 'reports/compare.html', describe: 'cross-task comparison report' }),
  run: async (args) => (await import('../start-impl.js')).startCli(args as never),
};

export const modelsCommand: Command = {
  command: 'models',
  describe: 'list the built-in models, one line each',
  builder: (y) => y,
  run: async () => {
    const { zooModels } = await import('../../zoo/index.js');
    await import('../../zoo/builtin.js');
    for (const m of zooModels()) console.log(`${m.name.padEnd(22)} ${m.kind.padEnd(8)} tasks: ${m.tasks.join(', ').padEnd(30)} ${m.describe}`);
    console.log(`\nAny HuggingFace GPT-2 folder or hub id (e.g. gpt2, from the HuggingFace cache) works too.`);
    return 0;
  },
};
