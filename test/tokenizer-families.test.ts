import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { BpeTokenizer, tokenizerForFolder } from '../src/model/tokenizer.js';
import { TASKS } from '../src/tasks/index.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

/**
 * Each family's tokenizer.json (through @huggingface/tokenizers) against what HuggingFace's own
 * tokenizer gives for every string of tokenizer_cases.json: ids with the special tokens (the
 * family's BOS rule), and both decodings.
 */
interface Cases {
  bos_prepended: boolean;
  special_token_ids: { bos: number | null };
  vocab_size: number;
  cases: { text: string; ids: number[]; tokens: string[]; decoded: string; decoded_skip_special: string }[];
}

for (const family of ['neox', 'llama', 'qwen2', 'gemma2']) {
  describe(`${family} tokenizer`, () => {
    const dir = join(FIXTURES, `${family}-shared`);
    const fixture = readJson<Cases>(dir, 'tokenizer_cases.json');
    const tok = tokenizerForFolder(join(dir, 'model'), fixture.vocab_size);

    it('is read from tokenizer.json with the vocabulary size of the model', () => {
      expect(tok).toBeInstanceOf(BpeTokenizer);
      expect(tok.vocabSize).toBe(fixture.vocab_size);
    });

    it(`follows the family's BOS rule (${fixture.bos_prepended ? 'prepended' : 'none'})`, () => {
      expect(tok.prefix).toEqual(fixture.bos_prepended ? [fixture.special_token_ids.bos] : []);
    });

    it(`gives HuggingFace's ids for all ${fixture.cases.length} strings, with the special tokens`, () => {
      for (const c of fixture.cases) {
        expect(tok.encodePrompt(c.text), JSON.stringify(c.text)).toEqual(c.ids);
        // the text's own tokens are the same without the prefix
        expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids.slice(tok.prefix.length));
      }
    });

    it('decodes every case with and without special tokens as HuggingFace does', () => {
      for (const c of fixture.cases) {
        expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
        expect(tok.decode(c.ids, { skipSpecial: true }), JSON.stringify(c.text)).toBe(c.decoded_skip_special);
      }
    });

    it('shows pieces as the text they stand for', () => {
      const c = fixture.cases.find((x) => x.text === 'Mary and John had a book. John gave it to')!;
      const pieces = c.ids.slice(tok.prefix.length).map((id) => tok.tokenString(id));
      expect(pieces.join('').trim()).toBe(c.text);
      expect(pieces).toContain(' John');
    });
  });
}

describe('built-in tasks through a family tokenizer', () => {
  const tokenizer = (family: string) => tokenizerForFolder(join(FIXTURES, `${family}-shared`, 'model'), 100_000);

  it("ioi prompts carry the family's BOS rule and re-tokenize to their ids", () => {
    for (const [family, bos] of [['llama', 766], ['gemma2', 2], ['qwen2', undefined], ['neox', undefined]] as const) {
      const tok = tokenizer(family);
      const ds = TASKS.ioi.generate(tok, { n: 4, seed: 3 });
      for (const ids of [...ds.clean, ...ds.corrupted]) {
        if (bos === undefined) expect(ids[0]).not.toBe(tok.prefix[0]);
        else expect(ids[0], family).toBe(bos);
        expect(tok.encodePrompt(tok.decode(ids, { skipSpecial: true })), family).toEqual(ids);
      }
    }
  });

  it('names the built-in words a vocabulary lacks', () => {
    expect(() => TASKS.induction.generate(tokenizer('llama'), { n: 4, seed: 1 })).toThrow(
      /induction: only 5 of the 50 built-in sequence tokens are single tokens for the bpe tokenizer \(apple, river, window, garden, market\); not single tokens: stone, cloud, table, .*\(33 more\); at least 16 are needed/,
    );
  });
});
