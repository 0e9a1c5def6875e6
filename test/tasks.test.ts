import { describe, it, expect } from 'vitest';
import { CircuitryError } from '../src/errors.js';
import { IdsTokenizer, R50kTokenizer, WordTokenizer, type Tokenizer } from '../src/model/tokenizer.js';
import { ZOO_BOS_ID, ZOO_VOCAB, ZOO_WORDS, isZooWord, zooId, zooIds } from '../src/zoo/vocab.js';
import {
  Rng,
  TASKS,
  checkDataset,
  datasetHash,
  docstringDataset,
  generateTask,
  greaterThanDataset,
  inductionDataset,
  ioiDataset,
  IOI_TEMPLATES,
  taskByName,
  type TaskDataset,
} from '../src/tasks/index.js';

const gpt2 = new R50kTokenizer();
const zoo = new WordTokenizer(ZOO_VOCAB);
const TOKENIZERS: readonly [string, Tokenizer][] = [
  ['gpt2', gpt2],
  ['zoo', zoo],
];

const ids = (tok: Tokenizer, text: string): number[] => tok.encode(text);
const one = (tok: Tokenizer, text: string): number => {
  const t = tok.encode(text);
  expect(t, `${JSON.stringify(text)} should be one token`).toHaveLength(1);
  return t[0];
};
/** Asserts fn throws a CircuitryError whose message contains every fragment. */
function throwsWith(fn: () => unknown, ...fragments: string[]): string {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a CircuitryError').toBeInstanceOf(CircuitryError);
  const msg = (err as Error).message;
  for (const f of fragments) expect(msg).toContain(f);
  return msg;
}

function expectWellFormed(ds: TaskDataset, tok: Tokenizer, n: number): void {
  expect(ds.clean).toHaveLength(n);
  for (let i = 0; i < n; i++) {
    expect(ds.clean[i]).toHaveLength(ds.seqLen);
    expect(ds.corrupted[i]).toHaveLength(ds.seqLen);
    expect(ds.answers[i].length).toBeGreaterThan(0);
    expect(ds.wrongs[i].length).toBeGreaterThan(0);
    // the text re-encodes to exactly the ids (the generator's round-trip guarantee)
    expect(tok.encode(ds.text![i].clean)).toEqual(ds.clean[i]);
    expect(tok.encode(ds.text![i].corrupted)).toEqual(ds.corrupted[i]);
  }
  expect(() => checkDataset(ds, tok.vocabSize)).not.toThrow();
}

describe('Rng', () => {
  it('is deterministic from its seed and differs across seeds, including seeds beyond 32 bits', () => {
    const draw = (seed: number): number[] => {
      const r = new Rng(seed);
      return Array.from({ length: 20 }, () => r.nextU32());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(0)).not.toEqual(draw(2 ** 32));
    expect(draw(-1)).not.toEqual(draw(1));
  });

  it('draws integers in range, close to uniform', () => {
    const r = new Rng(123);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) counts[r.int(10)]++;
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(200);
    for (let i = 0; i < 1000; i++) {
      const x = r.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });

  it('samples distinct elements and shuffles without touching its argument', () => {
    const r = new Rng(5);
    const xs = [1, 2, 3, 4, 5, 6, 7, 8];
    const s = r.sample(xs, 5);
    expect(new Set(s).size).toBe(5);
    for (const x of s) expect(xs).toContain(x);
    const sh = r.shuffle(xs);
    expect(xs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...sh].sort((a, b) => a - b)).toEqual(xs);
    expect(() => r.sample(xs, 9)).toThrow(RangeError);
  });

  it('rejects a non-integer seed', () => {
    throwsWith(() => new Rng(1.5), 'seed', '1.5');
  });
});

describe('datasetHash', () => {
  const base = { clean: [[1, 2, 3]], corrupted: [[1, 4, 3]], answers: [[5]], wrongs: [[6]] };
  it('depends on the ids only, not on names or text', () => {
    const a: TaskDataset = { ...base, name: 'a', source: 'x', seqLen: 3 };
    const b: TaskDataset = { ...base, name: 'b', source: 'y', seqLen: 3, text: [{ clean: 'c', corrupted: 'd', answer: 'e', wrong: 'f' }] };
    expect(datasetHash(a)).toBe(datasetHash(b));
    expect(datasetHash(a)).toMatch(/^[0-9a-f]{64}$/u);
  });
  it('changes when any id changes or moves between fields', () => {
    const h = datasetHash(base);
    expect(datasetHash({ ...base, wrongs: [[7]] })).not.toBe(h);
    expect(datasetHash({ ...base, answers: [[6]], wrongs: [[5]] })).not.toBe(h);
    expect(datasetHash({ ...base, answers: [[5, 6]], wrongs: [[]] })).not.toBe(datasetHash({ ...base, answers: [[5]], wrongs: [[6]] }));
  });
});

describe('checkDataset', () => {
  const ok: TaskDataset = { name: 'd', source: 's', clean: [[1, 2]], corrupted: [[1, 3]], answers: [[4]], wrongs: [[5]], seqLen: 2 };
  it('accepts a valid dataset and names each broken invariant', () => {
    expect(() => checkDataset(ok, 10)).not.toThrow();
    throwsWith(() => checkDataset({ ...ok, corrupted: [[1, 3, 4]] }, 10), "dataset 'd'", 'row 0 corrupted has 3 tokens, expected seqLen 2');
    throwsWith(() => checkDataset({ ...ok, answers: [[12]] }, 10), 'token id 12', '0..9');
    throwsWith(() => checkDataset({ ...ok, wrongs: [[4]] }, 10), 'both an answer and a wrong');
    throwsWith(() => checkDataset({ ...ok, clean: [] , corrupted: [], answers: [], wrongs: [] }, 10), 'no rows');
  });
});

describe('zoo vocabulary', () => {
  it('is 200-300 distinct whitespace-free words with the groups the tasks need', () => {
    expect(ZOO_VOCAB.length).toBeGreaterThanOrEqual(200);
    expect(ZOO_VOCAB.length).toBeLessThanOrEqual(300);
    expect(new Set(ZOO_VOCAB).size).toBe(ZOO_VOCAB.length);
    for (const w of ZOO_VOCAB) expect(w).toMatch(/^\S+$/u);
    expect(ZOO_WORDS.names.length).toBeGreaterThanOrEqual(20);
    expect(ZOO_WORDS.abstract).toHaveLength(30);
    expect(ZOO_WORDS.years).toHaveLength(100);
    expect(ZOO_WORDS.years[7]).toBe('07');
  });
  it('finds ids, and names a missing word', () => {
    expect(ZOO_VOCAB[zooId('Mary')]).toBe('Mary');
    expect(zooIds(['17', '32']).map((i) => ZOO_VOCAB[i])).toEqual(['17', '32']);
    expect(ZOO_VOCAB[ZOO_BOS_ID]).toBe('<bos>');
    expect(isZooWord('store')).toBe(true);
    expect(isZooWord('Xavier')).toBe(false);
    throwsWith(() => zooId('Xavier'), "'Xavier'", 'zoo vocabulary');
  });
  it('keeps the slot groups disjoint (a name is never a place, a year never an abstract token)', () => {
    const groups = [ZOO_WORDS.names, ZOO_WORDS.places, ZOO_WORDS.objects, ZOO_WORDS.events, ZOO_WORDS.years, ZOO_WORDS.abstract, ZOO_WORDS.params, ZOO_WORDS.functions];
    const seen = new Map<string, number>();
    groups.forEach((g, gi) => g.forEach((w) => {
      expect(seen.get(w), `'${w}' in two groups`).toBeUndefined();
      seen.set(w, gi);
    }));
  });
  it('GPT-2 encodes every zoo name, place and object as one token with its leading space', () => {
    for (const w of [...ZOO_WORDS.names, ...ZOO_WORDS.places, ...ZOO_WORDS.objects, ...ZOO_WORDS.events]) one(gpt2, ` ${w}`);
  });
});

describe.each(TOKENIZERS)('generators with the %s tokenizer', (_label, tok) => {
  for (const name of Object.keys(TASKS)) {
    it(`${name}: same seed, same dataset; another seed, another dataset; one length`, () => {
      const a = generateTask(name, tok, { n: 40, seed: 11 });
      const b = generateTask(name, tok, { n: 40, seed: 11 });
      const c = generateTask(name, tok, { n: 40, seed: 12 });
      expect(b).toEqual(a);
      expect(datasetHash(b)).toBe(datasetHash(a));
      expect(datasetHash(c)).not.toBe(datasetHash(a));
      expect(c.clean).not.toEqual(a.clean);
      expectWellFormed(a, tok, 40);
      expect(a.name).toBe(name);
      expect(a.source).toContain('"seed":11');
    });
  }

  it('ioi: the answer is the IO (the name said once), the wrong is S (said twice), orders alternate', () => {
    const ds = ioiDataset(tok, { n: 60, seed: 3 });
    const nameIds = new Set(ZOO_WORDS.names.map((w) => one(tok, ` ${w}`)));
    const isName = (id: number): boolean => nameIds.has(id) || /^ ?[A-Z][a-z]+$/u.test(tok.tokenString(id)) && !['When', 'After', 'While', 'As', 'Once'].includes(tok.tokenString(id).trim());
    ds.clean.forEach((row, i) => {
      const names = row.filter(isName);
      expect(names).toHaveLength(3);
      const counts = new Map<number, number>();
      for (const id of names) counts.set(id, (counts.get(id) ?? 0) + 1);
      const io = [...counts].find(([, c]) => c === 1)![0];
      const s = [...counts].find(([, c]) => c === 2)![0];
      expect(ds.answers[i]).toEqual([io]);
      expect(ds.wrongs[i]).toEqual([s]);
      // ABBA (even rows): IO first; BABA (odd rows): S first
      expect(names[0]).toBe(i % 2 === 0 ? io : s);
      expect(names[2]).toBe(s);
      // abc: the corrupted prompt has three distinct new names and the rest unchanged
      const diff = row.map((id, j) => j).filter((j) => ds.corrupted[i][j] !== row[j]);
      const replaced = diff.map((j) => ds.corrupted[i][j]);
      expect(diff).toHaveLength(3);
      expect(new Set(replaced).size).toBe(3);
      for (const id of replaced) {
        expect(id).not.toBe(io);
        expect(id).not.toBe(s);
      }
    });
  });

  it('ioi name-swap: only the second S changes, to the IO', () => {
    const ds = ioiDataset(tok, { n: 30, seed: 4, corruption: 'name-swap' });
    ds.clean.forEach((row, i) => {
      const diff = row.map((_, j) => j).filter((j) => ds.corrupted[i][j] !== row[j]);
      expect(diff).toHaveLength(1);
      expect(row[diff[0]]).toBe(ds.wrongs[i][0]);
      expect(ds.corrupted[i][diff[0]]).toBe(ds.answers[i][0]);
    });
  });

  it('ioi: the built-in templates all have one length, so every template appears', () => {
    const ds = ioiDataset(tok, { n: 200, seed: 1 });
    expect(ds.seqLen).toBe(14);
    const starts = new Set(ds.text!.map((t) => t.clean.split(' ')[0]));
    expect(starts).toEqual(new Set(['When', 'After', 'While', 'As', 'Once']));
    expect(JSON.parse(ds.source.slice('ioi '.length)).templates).toEqual(IOI_TEMPLATES.map((_, i) => i));
  });

  it('greater-than: answers are exactly the years > YY, wrongs the years <= YY, corrupted uses 01', () => {
    const ds = greaterThanDataset(tok, { n: 80, seed: 9 });
    const years = Array.from({ length: 100 }, (_, y) => one(tok, String(y).padStart(2, '0')));
    const yearTok = (y: number): number => years[y];
    const c17 = one(tok, ' 17');
    const y01 = yearTok(1);
    const seen = new Set<number>();
    ds.clean.forEach((row, i) => {
      // "... year 17 YY to the year 17": YY sits right after the first " 17"
      const at = row.indexOf(c17);
      expect(row[row.length - 1]).toBe(c17);
      const yy = Number(tok.tokenString(row[at + 1]));
      expect(yy).toBeGreaterThanOrEqual(2);
      expect(yy).toBeLessThanOrEqual(98);
      seen.add(yy);
      const above = Array.from({ length: 99 - yy }, (_, k) => yearTok(yy + 1 + k));
      const below = Array.from({ length: yy + 1 }, (_, k) => yearTok(k));
      expect(new Set(ds.answers[i])).toEqual(new Set(above));
      expect(ds.answers[i]).toHaveLength(above.length);
      expect(new Set(ds.wrongs[i])).toEqual(new Set(below));
      expect(ds.corrupted[i][at + 1]).toBe(y01);
      expect(ds.corrupted[i].filter((_, j) => j !== at + 1)).toEqual(row.filter((_, j) => j !== at + 1));
    });
    expect(seen.size).toBeGreaterThan(30);
  });

  it('greater-than: minYear/maxYear bound the start years; century is an option', () => {
    const ds = greaterThanDataset(tok, { n: 50, seed: 1, minYear: 40, maxYear: 45, century: '16' });
    for (const t of ds.text!) {
      const m = /16 ?(\d\d) to/u.exec(t.clean);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(40);
      expect(Number(m![1])).toBeLessThanOrEqual(45);
    }
  });

  it('induction: the answer continues the repeat, is absent from the corrupted prompt, wrong is the corrupted token at its place', () => {
    const L = 6;
    const ds = inductionDataset(tok, { n: 50, seed: 2, length: L });
    expect(ds.seqLen).toBe(2 * L - 1);
    ds.clean.forEach((row, i) => {
      const first = row.slice(0, L);
      expect(new Set(first).size).toBe(L);
      expect(row.slice(L)).toEqual(first.slice(0, L - 1));
      expect(ds.answers[i]).toEqual([first[L - 1]]);
      const cor = ds.corrupted[i];
      expect(cor.slice(L)).toEqual(row.slice(L));
      expect(cor).not.toContain(first[L - 1]);
      for (const t of cor.slice(0, L)) expect(first).not.toContain(t);
      expect(ds.wrongs[i]).toEqual([cor[L - 1]]);
    });
  });

  it('docstring: the answer is the third parameter, wrongs the others; def corruption removes it', () => {
    const ds = docstringDataset(tok, { n: 30, seed: 6 });
    const param = one(tok, 'param');
    const comma = one(tok, ',');
    ds.clean.forEach((row, i) => {
      expect(row[row.length - 1]).toBe(param);
      // def F ( self , A , B , C , D ...: the parameters follow the commas
      const commas = row.map((id, j) => (id === comma ? j : -1)).filter((j) => j >= 0);
      const [a, b, c, d] = commas.slice(0, 4).map((j) => row[j + 1]);
      expect(ds.answers[i]).toEqual([c]);
      expect(ds.wrongs[i]).toEqual([a, b, d]);
      // A and B are documented right after ":param"
      const documented = row.map((id, j) => (id === param ? row[j + 1] : -1)).filter((x) => x >= 0);
      expect(documented).toEqual([a, b]);
      expect(ds.corrupted[i]).not.toContain(c);
    });
    const doc = docstringDataset(tok, { n: 10, seed: 6, corruption: 'doc' });
    doc.clean.forEach((row, i) => {
      const diff = row.map((_, j) => j).filter((j) => doc.corrupted[i][j] !== row[j]);
      expect(diff).toHaveLength(2);
      for (const j of diff) expect(row[j - 1]).toBe(param);
    });
  });

  it('bos is prepended to every prompt', () => {
    const bosId = tok === zoo ? ZOO_BOS_ID : 50256;
    const plain = ioiDataset(tok, { n: 5, seed: 1 });
    const withBos = ioiDataset(tok, { n: 5, seed: 1, bos: tok === zoo ? '<bos>' : '<|endoftext|>' });
    expect(withBos.seqLen).toBe(plain.seqLen + 1);
    withBos.clean.forEach((row, i) => expect(row).toEqual([bosId, ...plain.clean[i]]));
    withBos.corrupted.forEach((row, i) => expect(row).toEqual([bosId, ...plain.corrupted[i]]));
  });
});

describe('generators on GPT-2 specifically', () => {
  it('ioi reads as the paper\'s sentences with names as single " Name" tokens', () => {
    const ds = ioiDataset(gpt2, { n: 5, seed: 1, templates: [0], names: ['Mary', 'John'], places: ['store'], objects: ['drink'], corruption: 'name-swap', orders: ['ABBA'] });
    for (const [i, t] of ds.text!.entries()) {
      // ABBA with two names: the IO is whichever name came first
      const [io, s] = t.clean.startsWith('When Mary') ? ['Mary', 'John'] : ['John', 'Mary'];
      expect(t).toEqual({
        clean: `When ${io} and ${s} went to the store, ${s} gave a drink to`,
        corrupted: `When ${io} and ${s} went to the store, ${io} gave a drink to`,
        answer: ` ${io}`,
        wrong: ` ${s}`,
      });
      expect(ds.clean[i]).toEqual(ids(gpt2, t.clean));
      expect(ds.answers[i]).toEqual(ids(gpt2, ` ${io}`));
    }
    expect(new Set(ds.text!.map((t) => t.answer)).size).toBe(2);
  });

  it('greater-than splits the year as " 17" "YY" and never draws 1700', () => {
    const ds = greaterThanDataset(gpt2, { n: 30, seed: 2, nouns: ['war'], minYear: 1, maxYear: 3 });
    expect(ds.text![0].clean).toMatch(/^The war lasted from the year 170[1-3] to the year 17$/u);
    expect(ds.seqLen).toBe(12);
    // with minYear 1..maxYear 1 only 1701 is possible
    const only = greaterThanDataset(gpt2, { n: 3, seed: 2, minYear: 1, maxYear: 1 });
    for (const t of only.text!) expect(t.clean).toContain('1701 to');
  });

  it('induction falls back to English words (the zoo tokens are not GPT-2 tokens)', () => {
    const ds = inductionDataset(gpt2, { n: 3, seed: 1 });
    expect(ds.source).toContain('built-in words');
    expect(ds.text![0].clean).toMatch(/^( [a-z]+){15}$/u);
  });
});

describe('generator word lists', () => {
  it('the zoo tokenizer draws from every zoo name, place and object', () => {
    const ds = ioiDataset(zoo, { n: 400, seed: 1 });
    const used = new Set(ds.clean.flat().map((id) => zoo.tokenString(id)));
    for (const w of [...ZOO_WORDS.names, ...ZOO_WORDS.places, ...ZOO_WORDS.objects]) expect(used.has(w), w).toBe(true);
    const ind = inductionDataset(zoo, { n: 100, seed: 1 });
    expect(new Set(ind.clean.flat().map((id) => zoo.tokenString(id)))).toEqual(new Set(ZOO_WORDS.abstract));
  });

  it('given words that are not single tokens are listed with their tokens', () => {
    const msg = throwsWith(() => ioiDataset(gpt2, { n: 2, seed: 0, names: ['Mary', 'John', 'Xavierhorn', 'Bob', 'Tom', 'Qwzrtx'] }), "ioi: option 'names'", 'Xavierhorn', 'Qwzrtx', 'r50k');
    expect(msg).not.toContain('"Mary"');
    expect(msg).toMatch(/" Xavierhorn" \(\d tokens: /u);
    throwsWith(() => ioiDataset(zoo, { n: 2, seed: 0, names: ['Mary', 'John', 'Xavier', 'Tom', 'Sam'] }), "option 'names'", 'Xavier', 'unknown word');
  });

  it('too few usable built-in words is an error naming the option to pass', () => {
    const tiny = new WordTokenizer(['When', 'Mary', 'John', 'and', 'went', 'to', 'the', 'store', ',', 'gave', 'a', 'drink']);
    throwsWith(() => ioiDataset(tiny, { n: 2, seed: 0 }), 'ioi: only 2 of the', 'built-in names', 'Mary, John', 'at least 5', "pass option 'names'");
    // with name-swap 2 names suffice, but the template words are missing
    throwsWith(() => ioiDataset(tiny, { n: 2, seed: 0, corruption: 'name-swap', templates: [1] }), 'cannot encode the template', 'After');
    const ok = ioiDataset(tiny, { n: 4, seed: 0, corruption: 'name-swap', templates: [0] });
    expect(ok.text![0].clean).toMatch(/^When (Mary and John|John and Mary) went to the store , (Mary|John) gave a drink to$/u);
  });

  it('induction needs 2L distinct tokens and accepts raw ids for models without text', () => {
    throwsWith(() => inductionDataset(zoo, { n: 2, seed: 0, length: 16 }), 'at least 32', "option 'tokens'");
    const idsTok = new IdsTokenizer(100);
    throwsWith(() => inductionDataset(idsTok, { n: 2, seed: 0 }), 'induction: only 0 of the');
    const ds = inductionDataset(idsTok, { n: 4, seed: 0, tokenIds: Array.from({ length: 20 }, (_, i) => 50 + i), length: 5 });
    expect(ds.seqLen).toBe(9);
    for (const row of [...ds.clean, ...ds.corrupted]) for (const t of row) expect(t >= 50 && t < 70).toBe(true);
    throwsWith(() => inductionDataset(idsTok, { n: 2, seed: 0, tokenIds: [1, 2, 300] }), "option 'tokenIds'", '0..99');
  });

  it('docstring rejects description words that are parameter names', () => {
    throwsWith(() => docstringDataset(zoo, { n: 2, seed: 0, words: ['store', 'size'] }), "option 'words'", 'size', 'parameter names');
  });
});

describe('generator options', () => {
  it('n and seed are required, typos and bad values are errors naming the option', () => {
    // @ts-expect-error n missing on purpose
    throwsWith(() => ioiDataset(zoo, { seed: 1 }), "ioi: option 'n'", 'required');
    // @ts-expect-error seed missing on purpose
    throwsWith(() => ioiDataset(zoo, { n: 1 }), "option 'seed' is required");
    throwsWith(() => generateTask('ioi', zoo, { n: 2, seed: 1, corruptoin: 'abc' }), "unknown option 'corruptoin'", 'corruption');
    throwsWith(() => generateTask('ioi', zoo, { n: 2, seed: 1, corruption: 'xyz' }), "option 'corruption' must be one of abc, name-swap", '"xyz"');
    throwsWith(() => generateTask('ioi', zoo, { n: 0, seed: 1 }), "option 'n' must be an integer in 1..");
    throwsWith(() => generateTask('ioi', zoo, { n: 2, seed: 1, orders: ['ABBA', 'ABBA'] }), "option 'orders'");
    throwsWith(() => generateTask('greater-than', zoo, { n: 2, seed: 1, century: 17 }), "greater-than: option 'century' must be two digits");
    throwsWith(() => generateTask('greater-than', zoo, { n: 2, seed: 1, minYear: 50, maxYear: 40 }), "option 'maxYear' must be an integer in 50..98");
    throwsWith(() => generateTask('induction', zoo, { n: 2, seed: 1, length: 1 }), "option 'length'");
    throwsWith(() => generateTask('ioi', zoo, { n: 2, seed: 1, bos: 'When Mary' }), "option 'bos' must be one token");
  });

  it('templates: explicit templates of different lengths are refused; custom templates work', () => {
    const msg = throwsWith(
      () => ioiDataset(gpt2, { n: 2, seed: 1, templates: [0, 'Then {N1} and {N2} talked, and {S} said to'] }),
      "option 'templates'", 'different token lengths', '(14 tokens)', 'a dataset needs one length',
    );
    expect(msg).toContain('talked, and {S} said to" (10 tokens)');
    const ds = ioiDataset(gpt2, { n: 4, seed: 1, templates: ['Then {N1} and {N2} talked, and {S} said to'] });
    expect(ds.text![0].clean).toMatch(/^Then [A-Z][a-z]+ and [A-Z][a-z]+ talked, and [A-Z][a-z]+ said to$/u);
    throwsWith(() => ioiDataset(gpt2, { n: 1, seed: 1, templates: ['When {N1} went, {S} gave to'] }), 'must contain {N2} exactly once');
    throwsWith(() => ioiDataset(gpt2, { n: 1, seed: 1, templates: ['When {N1} and {N2} saw {X}, {S} said to'] }), 'unknown slot {X}');
    throwsWith(() => ioiDataset(gpt2, { n: 1, seed: 1, templates: [8] }), "option 'templates'", '0..7');
  });
});

describe('task registry', () => {
  it('lists ioi, greater-than, induction and docstring with a one-line description', () => {
    expect(Object.keys(TASKS).sort()).toEqual(['docstring', 'greater-than', 'induction', 'ioi']);
    for (const [k, t] of Object.entries(TASKS)) {
      expect(t.name).toBe(k);
      expect(t.describe).not.toContain('\n');
      expect(t.describe.length).toBeGreaterThan(20);
    }
  });
  it('names the tasks when asked for an unknown one', () => {
    throwsWith(() => taskByName('ioii'), "unknown task 'ioii'", 'ioi, greater-than, induction, docstring');
    throwsWith(() => taskByName('toString'), "unknown task 'toString'");
  });
});
