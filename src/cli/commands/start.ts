import type { Command } from './types.js';

/**
 * The pipelines `npm start` runs: every task on the two trained zoo architectures (mini-gpt2,
 * mini-llama), task by task, so the comparison page sets each task's two circuits side by side.
 */
export const DEFAULT_PIPELINES = [
  'pipelines/ioi.yaml',
  'pipelines/mini-llama-ioi.yaml',
  'pipelines/greater-than.yaml',
  'pipelines/mini-llama-greater-than.yaml',
  'pipelines/induction.yaml',
  'pipelines/mini-llama-induction.yaml',
];

export const startCommand: Command = {
  command: 'start',
  describe: 'the quickstart: discover the circuits of every task on the built-in trained models (GPT-2 and Llama shapes), write graphs/, reports/ and a comparison of them all',
  builder: (y) =>
    y
      .option('pipelines', { type: 'array', string: true, default: DEFAULT_PIPELINES, describe: 'pipeline files to run' })
      .option('compare-out', { type: 'string', default: 'reports/compare.html', describe: 'comparison report of every circuit (each task on both architectures side by side)' }),
  run: async (args) => (await import('../start-impl.js')).startCli(args as never),
};

export const modelsCommand: Command = {
  command: 'models',
  describe: 'list the built-in models, one line each',
  builder: (y) => y,
  run: async () => {
    const { zooModels } = await import('../../zoo/index.js');
    await import('../../zoo/builtin.js');
    const { ADAPTERS } = await import('../../model/arch/index.js');
    for (const m of zooModels()) console.log(`${m.name.padEnd(22)} ${m.kind.padEnd(8)} tasks: ${m.tasks.join(', ').padEnd(30)} ${m.describe}`);
    console.log(`\nAny HuggingFace folder or hub id of a supported family (${ADAPTERS.map((a) => a.family).join(', ')}; e.g. gpt2, from the HuggingFace cache) works too.`);
    return 0;
  },
};
