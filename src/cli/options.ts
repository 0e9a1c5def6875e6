import { UsageError } from './usage.js';
import type { Argv } from 'yargs';

/** Shared option groups, composed by the commands that take them. */
export function modelOption<T>(y: Argv<T>) {
  return y.option('model', { type: 'string', demandOption: true, describe: 'zoo name, HuggingFace folder, or hub id (e.g. gpt2)' });
}

export function dataOptions<T>(y: Argv<T>, required = true) {
  return y
    .option('dataset', { type: 'string', describe: 'JSONL file of {clean, corrupted, answer, wrong} pairs' })
    .option('task', { type: 'string', describe: "built-in task (see 'circuitry tasks') instead of --dataset" })
    .option('n', { type: 'number', default: 64, describe: 'pairs to generate for --task' })
    .option('seed', { type: 'number', default: 0, describe: 'seed for --task' })
    .conflicts('dataset', 'task')
    .check((a) => {
      if (required && !a.dataset && !a.task) throw new UsageError('give --dataset FILE.jsonl or --task NAME');
      return true;
    });
}

export function metricOption<T>(y: Argv<T>, fallback = 'logit-diff') {
  return y.option('metric', { type: 'string', default: fallback, describe: 'logit-diff | prob | logprob | accuracy | kl' });
}
