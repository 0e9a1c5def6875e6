import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BpeTokenizer,
  IdsTokenizer,
  R50kTokenizer,
  WordTokenizer,
  parseTokenIds,
  tokenizerForFolder,
} from '../src/model/tokenizer.js';
import { CircuitryError } from '../src/errors.js';
import { gpt2TokenizerJsonFromR50k, handTokenizerJson } from './helpers/io-tokenizers.js';
import { tempDir, writeFileJson } from './helpers/io-files.js';

function errorOf(fn: () => unknown): CircuitryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CircuitryError);
    return e as CircuitryError;
  }
  throw new Error('expected a CircuitryError, nothing was thrown');
}

const UNICODE_SAMPLES = [
  'héllo wörld',
  '日本語のテキスト',
  'emoji 🙂🚀 and ZWJ 👩‍👩‍👧',
  'tabs\tand\r\nCRLF  double  spaces   ',
  "I'm sure it's fine, isn't it? 3.14159 + 2,718",
  'Ünïcödé ∑ ∞ ≠ — “quotes”',
  '\u0000 control \u0007 chars',
  '',
];

describe('byte-level BPE from a tokenizer.json', () => {
  const tok = new BpeTokenizer(handTokenizerJson(), 'hand/tokenizer.json');

  it('applies merges in rank order, not left to right', () => {
    expect(tok.encode('hello')).toEqual([262]);
    // 'h e' (rank 1) beats 'Ġ h' (rank 7): Ġ + hello, not Ġh + ello
    expect(tok.encode(' hello')).toEqual([220, 262]);
    expect(tok.encode('hell')).toEqual([261]);
    expect(tok.encode(' the')).toEqual([258]);
    // no ' th' merge applies to ' thx': Ġt (rank 0) then nothing
    expect(tok.encode(' thx')).toEqual([256, 'h'.charCodeAt(0) - 33, 'x'.charCodeAt(0) - 33]);
    expect(tok.encode('the hello')).toEqual(['t'.charCodeAt(0) - 33, 257, 220, 262]);
  });

  it('pre-tokenizes whitespace runs as GPT-2 does', () => {
    // '\s+(?!\S)': a run of spaces leaves its last space to the next word: 'Ġ' + 'Ġhello'
    // (contractions and digits are covered by the comparison with r50k below)
    expect(tok.encode('  hello')).toEqual([220, 220, 262]);
    expect(tok.encode('\nhello')).toEqual([198, 262]);
  });

  it('accepts merges as ["a", "b"] pairs with the same result', () => {
    const pairs = new BpeTokenizer(handTokenizerJson({ pairs: true }));
    for (const s of ['hello', ' hello the hell', 'x the']) expect(pairs.encode(s)).toEqual(tok.encode(s));
  });

  it('recognises added tokens anywhere in the text', () => {
    expect(tok.encode('hello<|endoftext|> hello')).toEqual([262, 265, 220, 262]);
    expect(tok.encode('<pad><pad>')).toEqual([266, 266]);
    expect(tok.decode([262, 265, 220, 262, 266])).toBe('hello<|endoftext|> hello<pad>');
    expect(tok.tokenString(265)).toBe('<|endoftext|>');
  });

  it('honours add_prefix_space', () => {
    const pre = new BpeTokenizer(handTokenizerJson({ addPrefixSpace: true }));
    expect(pre.encode('hello')).toEqual([220, 262]);
    expect(pre.encode(' hello')).toEqual([220, 262]);
  });

  it('reports vocabSize as the largest id + 1 and shows tokens as text', () => {
    expect(tok.vocabSize).toBe(267);
    expect(tok.kind).toBe('bpe');
    expect(tok.tokenString(258)).toBe(' the');
    expect(tok.tokenString(220)).toBe(' ');
    expect(tok.tokenString(198)).toBe('\n');
    // a lone UTF-8 lead byte (0xE6) cannot display as text
    const lead = tok.encode('日')[0];
    expect(tok.tokenString(lead)).toBe('\\xe6');
  });

  it('round-trips unicode text exactly', () => {
    for (const s of UNICODE_SAMPLES) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('refuses WordPiece and Unigram tokenizers, naming the file and field', () => {
    const bad = (type: string): string => {
      const j = handTokenizerJson();
      (j.model as Record<string, unknown>).type = type;
      return errorOf(() => new BpeTokenizer(j, 'x/tokenizer.json')).message;
    };
    for (const type of ['WordPiece', 'Unigram']) {
      expect(bad(type)).toBe(
        `x/tokenizer.json: model.type is "${type}"; circuitry runs BPE tokenizers (model.type "BPE": byte-level, or SentencePiece-style with byte fallback), not WordPiece or Unigram`,
      );
    }
    expect(errorOf(() => new BpeTokenizer([], 'y.json')).message).toBe('y.json: expected a JSON object');
  });

  it('names an id outside the vocabulary', () => {
    expect(errorOf(() => tok.decode([1, 9999])).message).toBe('token id 9999 is out of range for the tokenizer (ids 0..266)');
    expect(errorOf(() => tok.tokenString(-1)).message).toBe('token id -1 is out of range for the tokenizer (ids 0..266)');
  });

  it('reads a tokenizer.json file and names it when it is not JSON', () => {
    const dir = tempDir();
    const path = join(dir, 'tokenizer.json');
    writeFileSync(path, '{"model": ');
    expect(errorOf(() => BpeTokenizer.fromFile(path)).message).toMatch(new RegExp(`^${path}: cannot read the tokenizer \\(.*JSON.*\\)$`));
  });
});

describe('GPT-2 r50k (js-tiktoken, offline)', () => {
  const r50k = new R50kTokenizer();

  it('gives the known GPT-2 ids', () => {
    expect(r50k.encode('Hello world')).toEqual([15496, 995]);
    expect(r50k.encode(' the')).toEqual([262]);
    expect(r50k.encode('The quick brown fox')).toEqual([464, 2068, 7586, 21831]);
    expect(r50k.encode("I can't")).toEqual([40, 460, 470]);
    expect(r50k.encode('\n')).toEqual([198]);
    expect(r50k.encode(' ')).toEqual([220]);
    expect(r50k.encode('!')).toEqual([0]);
    expect(r50k.encode('<|endoftext|>')).toEqual([50256]);
    expect(r50k.vocabSize).toBe(50257);
    expect(r50k.kind).toBe('r50k');
  });

  it('shows tokens as the text they stand for', () => {
    expect(r50k.tokenString(262)).toBe(' the');
    expect(r50k.tokenString(15496)).toBe('Hello');
    expect(r50k.tokenString(198)).toBe('\n');
    expect(r50k.tokenString(50256)).toBe('<|endoftext|>');
    // '日' is three bytes split over tokens; the first alone is not text
    const ids = r50k.encode('日');
    expect(ids.length).toBeGreaterThan(1);
    expect(r50k.tokenString(ids[0])).toMatch(/^(\\x[0-9a-f]{2})+$/);
    expect(errorOf(() => r50k.tokenString(50257)).message).toBe('token id 50257 is out of range for the GPT-2 tokenizer (ids 0..50256)');
  });

  it('round-trips unicode text exactly', () => {
    for (const s of UNICODE_SAMPLES) expect(r50k.decode(r50k.encode(s))).toBe(s);
  });

  it('matches the BPE implementation on a GPT-2 tokenizer.json rebuilt from the same ranks', () => {
    const bpe = new BpeTokenizer(gpt2TokenizerJsonFromR50k(), 'gpt2/tokenizer.json');
    expect(bpe.vocabSize).toBe(50257);
    const texts = [
      ...UNICODE_SAMPLES,
      'When Mary and John went to the store, John gave a drink to',
      'The war lasted from the year 1732 to the year 17',
      'def f(x):\n    return x ** 2  # squares\n\n\n',
      'antidisestablishmentarianism supercalifragilisticexpialidocious',
      "They'll've WE'RE you'D <|endoftext|>Next document",
      'https://example.com/path?q=1&r=%20 user@example.org',
    ];
    for (const s of texts) expect(bpe.encode(s)).toEqual(r50k.encode(s));
    for (const id of [0, 198, 220, 262, 15496, 50256]) expect(bpe.tokenString(id)).toBe(r50k.tokenString(id));
  });
});

describe('word tokenizer', () => {
  const words = new WordTokenizer(['BOS', 'Mary', 'John', 'gave', 'a', 'drink', 'to', '.', ',', '(', ')']);

  it('splits on whitespace and keeps punctuation tokens', () => {
    expect(words.encode('BOS Mary gave a drink to John.')).toEqual([0, 1, 3, 4, 5, 6, 2, 7]);
    expect(words.encode('  Mary,John\n(())  ')).toEqual([1, 8, 2, 9, 9, 10, 10]);
    expect(words.decode([0, 1, 7])).toBe('BOS Mary .');
    expect(words.tokenString(5)).toBe('drink');
    expect(words.vocabSize).toBe(11);
    expect(words.kind).toBe('word');
  });

  it('finds mixed entries anywhere, reads symbol runs greedily, never splits letters', () => {
    const zoo = new WordTokenizer(['<bos>', 'def', 'run', '(', ')', ':', '"', '"""', 'size', 'self', ',', 'Sid', 'set']);
    expect(zoo.encode('<bos>def run(self, size):')).toEqual([0, 1, 2, 3, 9, 10, 8, 4, 5]);
    expect(zoo.encode('"""size"')).toEqual([7, 8, 6]);
    expect(zoo.encode('""""')).toEqual([7, 6]);
    expect(zoo.encode('Sid<bos>set')).toEqual([11, 0, 12]);
    expect(errorOf(() => zoo.encode('Sidset')).message).toBe(
      `unknown word 'Sidset': the model's vocabulary has 13 words: <bos> def run ( ) : " """ size self , Sid set`,
    );
    expect(errorOf(() => zoo.encode('run(sizes)')).message).toMatch(/^unknown word 'sizes' \(in 'run\(sizes\)'\): /);
  });

  it('names an unknown word and the vocabulary size', () => {
    expect(errorOf(() => words.encode('Mary gave a cat')).message).toBe(
      "unknown word 'cat': the model's vocabulary has 11 words: BOS Mary John gave a drink to . , ( )",
    );
    expect(errorOf(() => words.encode('Mary!')).message).toBe("unknown word '!' (in 'Mary!'): the model's vocabulary has 11 words: BOS Mary John gave a drink to . , ( )");
    const big = new WordTokenizer(Array.from({ length: 100 }, (_, i) => `w${i}`));
    expect(errorOf(() => big.encode('w1 nope')).message).toBe("unknown word 'nope': the model's vocabulary has 100 words");
  });

  it('rejects bad vocabularies and ids', () => {
    expect(errorOf(() => new WordTokenizer(['a', 'b', 'a'])).message).toBe("word tokenizer: 'a' appears twice in the vocabulary (ids 0 and 2)");
    expect(errorOf(() => new WordTokenizer(['a b'])).message).toBe('word tokenizer: vocabulary entry 0 ("a b") must be a non-empty string without whitespace');
    expect(errorOf(() => new WordTokenizer([])).message).toBe('word tokenizer: the vocabulary is empty');
    expect(errorOf(() => words.decode([11])).message).toBe("token id 11 is out of range for the model's vocabulary of 11 words (ids 0..10)");
  });
});

describe('ids-only tokenizer', () => {
  const ids = new IdsTokenizer(100, 'the model in /m');
  it('refuses text and shows ids in brackets', () => {
    expect(errorOf(() => ids.encode('hello')).message).toBe(
      "the model in /m has no tokenizer (no tokenizer.json, and a vocabulary of 100 ids is not GPT-2's 50257), so the text \"hello\" cannot be encoded: pass token ids instead (e.g. --tokens 1,2,3, or int arrays in a dataset)",
    );
    expect(ids.decode([17, 3])).toBe('[17][3]');
    expect(ids.tokenString(99)).toBe('[99]');
    expect(errorOf(() => ids.tokenString(100)).message).toBe("token id 100 is out of range for the model's vocabulary (ids 0..99)");
  });
});

describe('tokenizerForFolder', () => {
  it('uses tokenizer.json when present, else r50k for GPT-2-sized vocabularies, else ids', () => {
    const dir = tempDir();
    expect(tokenizerForFolder(dir, 50257).kind).toBe('r50k');
    const ids = tokenizerForFolder(dir, 100);
    expect(ids.kind).toBe('ids');
    expect(errorOf(() => ids.encode('x')).message).toContain(`the model in ${dir} has no tokenizer`);
    writeFileJson(join(dir, 'tokenizer.json'), handTokenizerJson());
    const bpe = tokenizerForFolder(dir, 300);
    expect(bpe.kind).toBe('bpe');
    expect(bpe.encode(' hello')).toEqual([220, 262]);
  });

  it('refuses a tokenizer with more ids than the model has embeddings', () => {
    const dir = tempDir();
    writeFileJson(join(dir, 'tokenizer.json'), handTokenizerJson());
    expect(errorOf(() => tokenizerForFolder(dir, 100)).message).toBe(
      `${join(dir, 'tokenizer.json')}: the tokenizer has 267 token ids but the model's vocabulary has 100 (config.json vocab_size): they do not belong together`,
    );
  });
});

describe('parseTokenIds', () => {
  it('reads commas, spaces and brackets', () => {
    expect(parseTokenIds('1,2,3', 10)).toEqual([1, 2, 3]);
    expect(parseTokenIds(' [15496, 995] ', 50257)).toEqual([15496, 995]);
    expect(parseTokenIds('0 9', 10)).toEqual([0, 9]);
  });
  it('names the bad id and the range', () => {
    expect(errorOf(() => parseTokenIds('1,10', 10)).message).toBe('token id 10 is out of range (expected integer ids in 0..9)');
    expect(errorOf(() => parseTokenIds('1,-1', 10)).message).toBe('token id -1 is out of range (expected integer ids in 0..9)');
    expect(errorOf(() => parseTokenIds('1,2.5', 10)).message).toBe("token id '2.5' is not an integer (expected integer ids in 0..9)");
    expect(errorOf(() => parseTokenIds('1,two', 10)).message).toBe("token id 'two' is not an integer (expected integer ids in 0..9)");
    expect(errorOf(() => parseTokenIds(' , ', 10)).message).toBe('token ids: got no ids in " , " (expected integer ids in 0..9, e.g. 464,3290)');
  });
});
