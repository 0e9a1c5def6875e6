import { UsageError } from '../usage.js';
import type { Command } from './types.js';
import { modelOption } from '../options.js';

export const runCommand: Command = {
  command: 'run',
  describe: 'run a model on a prompt and print its top next-token predictions per position',
  builder: (y) =>
    modelOption(y)
      .option('prompt', { type: 'string', describe: 'text to run' })
      .option('tokens', { type: 'string', describe: 'token ids instead of text, e.g. 1,2,3' })
      .option('top', { type: 'number', default: 5, describe: 'predictions shown per position' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' })
      .option('logits-out', { type: 'string', describe: 'write the full logits as JSON [batch][pos][vocab]' })
      .conflicts('prompt', 'tokens')
      .check((a) => {
        if (a.prompt === undefined && a.tokens === undefined) throw new UsageError('give --prompt TEXT or --tokens 1,2,3');
        if (!Number.isInteger(a.top) || (a.top as number) < 1) throw new UsageError('--top must be a positive integer');
        return true;
      }),
  run: async (args) => (await import('../run-impl.js')).runModel(args as never),
};
