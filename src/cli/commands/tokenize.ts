import { UsageError } from '../usage.js';
import type { Command } from './types.js';
import { modelOption } from '../options.js';

/** `circuitry tokenize --model M "text"`: the ids and pieces the model's tokenizer gives a prompt. */
export const tokenizeCommand: Command = {
  command: 'tokenize <text>',
  describe: "show the token ids and pieces of a text under a model's tokenizer (with its BOS rule)",
  builder: (y) =>
    modelOption(y)
      .positional('text', { type: 'string', describe: 'the text to tokenize' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON {ids, pieces, ...} instead of a table' })
      .option('special', { type: 'boolean', default: true, describe: "add the tokenizer's special tokens (BOS) as a prompt gets them; --no-special for the text's own tokens" })
      .example('circuitry tokenize --model mini-gpt2 "When Mary and John went to the store"', 'the ids and pieces of a prompt')
      .check((a) => {
        if (typeof a.text !== 'string') throw new UsageError('give the text to tokenize');
        return true;
      }),
  run: async (args) => {
    const { loadTokenizer } = await import('../../model/load.js');
    const { model, text, json, special } = args as { model: string; text: string; json: boolean; special: boolean };
    const { tokenizer } = await loadTokenizer(model, { log: (m) => console.error(m) });
    const ids = special ? tokenizer.encodePrompt(text) : tokenizer.encode(text);
    const pieces = ids.map((id) => tokenizer.tokenString(id));
    if (json) {
      console.log(JSON.stringify({ model, tokenizer: tokenizer.kind, vocab_size: tokenizer.vocabSize, text, prefix: tokenizer.prefix, ids, pieces }));
      return 0;
    }
    const bos = tokenizer.prefix.length ? `prepends ${tokenizer.prefix.map((id) => JSON.stringify(tokenizer.tokenString(id))).join(' ')}` : 'no BOS';
    console.log(`${model}: ${tokenizer.kind} tokenizer, ${tokenizer.vocabSize} ids, ${bos}`);
    console.log(`${ids.length} token${ids.length === 1 ? '' : 's'}`);
    const w = String(Math.max(0, ...ids)).length;
    ids.forEach((id, i) => console.log(`${String(i).padStart(4)}  ${String(id).padStart(w)}  ${JSON.stringify(pieces[i])}`));
    return 0;
  },
};
