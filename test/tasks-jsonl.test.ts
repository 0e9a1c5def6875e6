import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CircuitryError } from '../src/errors.js';
import { IdsTokenizer, R50kTokenizer, WordTokenizer, type Tokenizer } from '../src/model/tokenizer.js';
import { ZOO_VOCAB } from '../src/zoo/vocab.js';
import { datasetHash, loadJsonlDataset, ioiDataset } from '../src/tasks/index.js';
import { TINY } from './helpers/fixtures.js';

const gpt2 = new R50kTokenizer();
const zoo = new WordTokenizer(ZOO_VOCAB);
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'circuitry-jsonl-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function file(lines: readonly (string | object)[]): string {
  const path = join(dir, `d${counter++}.jsonl`);
  writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return path;
}

function loadError(path: string, tok: Tokenizer): string {
  try {
    loadJsonlDataset(path, tok);
  } catch (e) {
    expect(e).toBeInstanceOf(CircuitryError);
    return (e as Error).message;
  }
  throw new Error('expected loadJsonlDataset to throw');
}

const good = { clean: 'When Mary and John went to the store, John gave a drink to', corrupted: 'When Mary and John went to the store, Mary gave a drink to', answer: ' Mary', wrong: ' John' };

describe('loadJsonlDataset', () => {
  it('loads the tiny-gpt2 fixture (token-id rows)', () => {
    const ds = loadJsonlDataset(join(TINY, 'dataset.jsonl'), new IdsTokenizer(100));
    expect(ds.clean).toHaveLength(16);
    expect(ds.seqLen).toBe(12);
    expect(ds.clean[0]).toEqual([41, 16, 73, 23, 44, 83, 76, 8, 35, 50, 96, 76]);
    expect(ds.corrupted[0]).toEqual([41, 16, 73, 23, 86, 83, 76, 8, 35, 50, 96, 76]);
    expect(ds.answers[0]).toEqual([37]);
    expect(ds.wrongs[0]).toEqual([9]);
    expect(ds.name).toBe('dataset');
    expect(ds.source).toBe(join(TINY, 'dataset.jsonl'));
    expect(ds.text![0].answer).toBe('[37]');
  });

  it('tokenizes strings, takes answer sets as arrays, and skips blank lines', () => {
    // 5811 is " Bob", 1757 " John" in GPT-2's vocabulary
    const p = file([good, '', { ...good, answer: [' Mary', 5811], wrong: 1757 }, '   ']);
    const ds = loadJsonlDataset(p, gpt2);
    expect(ds.clean).toHaveLength(2);
    expect(ds.clean[0]).toEqual(gpt2.encode(good.clean));
    expect(ds.seqLen).toBe(14);
    expect(ds.answers[0]).toEqual(gpt2.encode(' Mary'));
    expect(ds.answers[1]).toEqual([...gpt2.encode(' Mary'), ...gpt2.encode(' Bob')]);
    expect(ds.wrongs[1]).toEqual(gpt2.encode(' John'));
    expect(ds.text![0]).toEqual(good);
    expect(ds.text![1].answer).toBe(' Mary| Bob');
  });

  it('hashes like the generator when the file holds the generated ids', () => {
    const gen = ioiDataset(zoo, { n: 6, seed: 2 });
    const p = file(gen.clean.map((c, i) => ({ clean: c, corrupted: gen.corrupted[i], answer: gen.answers[i], wrong: gen.wrongs[i] })));
    expect(datasetHash(loadJsonlDataset(p, zoo))).toBe(datasetHash(gen));
    const q = file(gen.text!.map((t) => ({ clean: t.clean, corrupted: t.corrupted, answer: t.answer, wrong: t.wrong })));
    expect(datasetHash(loadJsonlDataset(q, zoo))).toBe(datasetHash(gen));
  });

  it('works with the zoo word vocabulary', () => {
    const p = file([{ clean: 'The war lasted from the year 17 32 to the year 17', corrupted: 'The war lasted from the year 17 01 to the year 17', answer: ['33', '34'], wrong: ['32', '00'] }]);
    const ds = loadJsonlDataset(p, zoo);
    expect(ds.seqLen).toBe(12);
    expect(ds.answers[0].map((i) => zoo.tokenString(i))).toEqual(['33', '34']);
  });

  describe('errors name the file and line', () => {
    it('a missing file', () => {
      const p = join(dir, 'nope.jsonl');
      expect(loadError(p, gpt2)).toMatch(new RegExp(`^${p}: cannot read the dataset`, 'u'));
    });

    it('an empty file', () => {
      const p = file(['', '  ']);
      const msg = loadError(p, gpt2);
      expect(msg).toContain(`${p}: the dataset is empty`);
      expect(msg).toContain('"clean"');
    });

    it('invalid JSON on line N (1-based, blank lines counted)', () => {
      const p = file([good, '', '{"clean": "x", ']);
      expect(loadError(p, gpt2)).toMatch(new RegExp(`^${p}:3: invalid JSON`, 'u'));
    });

    it('a line that is not an object', () => {
      const p = file([good, '[1, 2]']);
      expect(loadError(p, gpt2)).toContain(`${p}:2: expected a JSON object`);
    });

    it('a missing field', () => {
      const { wrong: _w, ...noWrong } = good;
      const p = file([good, noWrong]);
      expect(loadError(p, gpt2)).toBe(`${p}:2: field 'wrong' is missing; expected a string, a token id or an array of them`);
      const q = file([{ corrupted: good.corrupted, answer: ' Mary', wrong: ' John' }]);
      expect(loadError(q, gpt2)).toBe(`${q}:1: field 'clean' is missing; expected a string or an array of token ids`);
    });

    it('a wrongly typed field', () => {
      const p = file([{ ...good, clean: 42 }]);
      expect(loadError(p, gpt2)).toBe(`${p}:1: field 'clean' must be a string or an array of token ids, got 42`);
      const q = file([{ ...good, answer: { text: 'Mary' } }]);
      expect(loadError(q, gpt2)).toBe(`${q}:1: field 'answer' must be a string, a token id or an array of them, got {"text":"Mary"}`);
      const r = file([{ ...good, wrong: [' John', true] }]);
      expect(loadError(r, gpt2)).toBe(`${r}:1: field 'wrong[1]' must be a string or a token id, got true`);
      const s = file([{ ...good, clean: [1, 'a', 3], corrupted: [1, 2, 3] }]);
      expect(loadError(s, gpt2)).toContain(`${s}:1: field 'clean' element 1: "a" is not a token id`);
      const t = file([{ ...good, answer: [] }]);
      expect(loadError(t, gpt2)).toContain(`${t}:1: field 'answer' is an empty array`);
    });

    it('clean and corrupted of different token lengths, giving both', () => {
      const p = file([good, { ...good, corrupted: 'When Mary and John went to the big store, Mary gave a drink to' }]);
      expect(loadError(p, gpt2)).toBe(`${p}:2: clean is 14 tokens but corrupted is 15; they must have the same token length`);
    });

    it('a row whose length differs from the first row', () => {
      const p = file([good, good, { clean: [1, 2, 3], corrupted: [1, 2, 4], answer: 5, wrong: 6 }]);
      const msg = loadError(p, gpt2);
      expect(msg).toContain(`${p}:3: this row is 3 tokens but the first row (line 1) is 14`);
      expect(msg).toContain('one length per batch');
    });

    it('an answer that is several tokens, showing the tokens', () => {
      const p = file([{ ...good, answer: ' Mary Ann' }]);
      const ids = gpt2.encode(' Mary Ann');
      expect(loadError(p, gpt2)).toBe(
        `${p}:1: field 'answer' " Mary Ann" is 2 tokens (" Mary" " Ann"; ids ${ids.join(', ')}); an answer must be a single token (a set of answers is an array of single tokens)`,
      );
      const q = file([{ ...good, wrong: [' John', ' Johnathan'] }]);
      expect(loadError(q, gpt2)).toMatch(new RegExp(`^${q}:1: field 'wrong\\[1\\]' " Johnathan" is \\d tokens`, 'u'));
    });

    it('token ids out of the vocabulary range', () => {
      const tok = new IdsTokenizer(100);
      const p = file([{ clean: [1, 2, 100], corrupted: [1, 2, 3], answer: 4, wrong: 5 }]);
      expect(loadError(p, tok)).toBe(`${p}:1: field 'clean' element 2: token id 100 is out of the vocabulary range 0..99`);
      const q = file([{ clean: [1, 2, 3], corrupted: [1, 2, 3], answer: -1, wrong: 5 }]);
      expect(loadError(q, tok)).toBe(`${q}:1: field 'answer': token id -1 is out of the vocabulary range 0..99`);
      const r = file([{ clean: [1, 2, 3], corrupted: [1, 2, 3], answer: 4, wrong: [5, 250] }]);
      expect(loadError(r, tok)).toBe(`${r}:1: field 'wrong[1]': token id 250 is out of the vocabulary range 0..99`);
    });

    it('text for a model without a tokenizer, and a word the vocabulary lacks', () => {
      const p = file([good]);
      expect(loadError(p, new IdsTokenizer(100))).toMatch(new RegExp(`^${p}:1: field 'clean': .*has no tokenizer`, 'u'));
      const q = file([{ ...good, corrupted: 'When Mary and Xavier went to the store, Mary gave a drink to' }]);
      expect(loadError(q, zoo)).toMatch(new RegExp(`^${q}:1: field 'corrupted': unknown word 'Xavier'`, 'u'));
    });

    it('a token listed twice in one set', () => {
      const p = file([{ ...good, answer: [' Mary', 5335] }]);
      expect(loadError(p, gpt2)).toBe(`${p}:1: field 'answer' lists token 5335 (" Mary") twice`);
    });

    it('a token that is both an answer and a wrong', () => {
      const p = file([{ ...good, answer: [' Mary', ' John'] }]);
      expect(loadError(p, gpt2)).toContain(`${p}:1: token ${gpt2.encode(' John')[0]} (" John") is both an answer and a wrong`);
    });
  });
});
