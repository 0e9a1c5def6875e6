import { UsageError } from '../usage.js';
import type { Command } from './types.js';
import { modelOption, numberFlag } from '../options.js';
import { outFile, readNumber } from '../flags.js';

export const runCommand: Command = {
  command: 'run',
  describe: 'run a model on a prompt and print its top next-token predictions per position',
  builder: (y) =>
    modelOption(y)
      .option('prompt', { type: 'string', describe: 'text to run' })
      .option('tokens', { type: 'string', describe: 'token ids instead of text, e.g. 1,2,3' })
      .option('top', numberFlag('predictions shown per position', 5))
      .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' })
      .option('logits-out', { type: 'string', describe: 'write the full logits as JSON [batch][pos][vocab]' })
      .conflicts('prompt', 'tokens')
      .check((a) => {
        if (a.prompt === undefined && a.tokens === undefined) throw new UsageError('give --prompt TEXT or --tokens 1,2,3');
        return true;
      })
      .example('circuitry run --model mini-gpt2 --prompt "When Mary and John went to the store , John gave a drink to"', 'top next-token predictions at every position'),
  run: async (args) => {
    const top = readNumber(args, 'top', 'count') ?? 5;
    const logitsOut = outFile(args, false, 'logits-out', 'the JSON file for the logits');
    return (await import('../run-impl.js')).runModel({ ...(args as Record<string, unknown>), top, logitsOut } as never);
  },
};
