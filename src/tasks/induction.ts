import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { ZOO_WORDS } from '../zoo/vocab.js';
import { assembleDataset, generatorSource, type GeneratedRow, type TaskDataset } from './dataset.js';
import { OptionReader, type CommonOptions } from './options.js';
import { PromptBuilder } from './prompt.js';
import { Rng } from './random.js';
import { CANDIDATE_SEQUENCE_WORDS, chooseWords, singleToken } from './words.js';

/**
 * Induction: a random sequence of L distinct tokens A1..AL, then its repeat cut one token short.
 *
 *   clean      A1 .. AL  A1 .. A(L-1)   -> AL (copy what followed A(L-1) the first time)
 *   corrupted  B1 .. BL  A1 .. A(L-1)      B: L other distinct tokens, none of them an A
 *
 * The corrupted prompt keeps the second half and the position of everything, but AL appears
 * nowhere in it, so only induction (and nothing positional) can produce it. The answer is AL;
 * the wrong is BL, the token the corrupted first copy has at AL's position (present in the
 * corrupted context, absent from the clean one). Prompts are 2L-1 tokens.
 *
 * Tokens come from `tokens` (words, each one token with its leading space), `tokenIds` (raw
 * ids, for models without text: no re-tokenization check), or by default the zoo's abstract
 * tokens t0..t29 when the tokenizer has them all, else built-in English words that are one token.
 */
export interface InductionOptions extends CommonOptions {
  /** Length L of the random sequence, default 8 (prompts are 2L-1 tokens). */
  readonly length?: number;
  readonly tokens?: readonly string[];
  readonly tokenIds?: readonly number[];
}

export const INDUCTION_OPTION_HELP: Readonly<Record<string, string>> = {
  length: 'length L of the repeated sequence, 2..512, default 8 (prompts are 2L-1 tokens; needs 2L distinct tokens)',
  tokens: 'the token pool as words, each one token with its leading space (default: the zoo abstract tokens t0..t29 if the tokenizer has them, else built-in English words)',
  tokenIds: 'the token pool as raw ids (for models without a text tokenizer)',
};

export function inductionDataset(tokenizer: Tokenizer, options: InductionOptions): TaskDataset {
  const task = 'induction';
  const opt = new OptionReader(task, options, INDUCTION_OPTION_HELP);
  const n = opt.n();
  const seed = opt.seed();
  const length = opt.int('length', { min: 2, max: 512, fallback: 8 });
  const bos = opt.bos(tokenizer);
  const need = 2 * length;
  const pb = new PromptBuilder(task, tokenizer);

  const givenIds = opt.ids('tokenIds', tokenizer.vocabSize);
  const givenWords = opt.words('tokens');
  if (givenIds && givenWords) throw new CircuitryError(`${task}: give either option 'tokens' or option 'tokenIds', not both`);
  let pool: number[];
  let poolSource: string;
  if (givenIds) {
    if (givenIds.length < need) throw new CircuitryError(`${task}: option 'tokenIds' has ${givenIds.length} ids; length ${length} needs at least ${need} (two disjoint sequences of ${length})`);
    pool = givenIds;
    poolSource = 'tokenIds';
  } else {
    const zooPool = ZOO_WORDS.abstract.every((w) => singleToken(tokenizer, ` ${w}`) !== undefined);
    const words = chooseWords(task, tokenizer, {
      option: 'tokens', what: 'sequence tokens', given: givenWords, candidates: zooPool ? ZOO_WORDS.abstract : CANDIDATE_SEQUENCE_WORDS, form: 'spaced', need,
    });
    pool = words.map((w) => pb.word(w, true));
    if (new Set(pool).size !== pool.length) throw new CircuitryError(`${task}: option 'tokens': two of the words encode to the same token`);
    poolSource = givenWords ? 'tokens' : zooPool ? 'zoo abstract tokens' : 'built-in words';
  }

  const rng = new Rng(seed);
  const rows: GeneratedRow[] = [];
  for (let i = 0; i < n; i++) {
    const a = rng.sample(pool, length);
    const inA = new Set(a);
    const b = rng.sample(pool.filter((t) => !inA.has(t)), length);
    const second = a.slice(0, length - 1);
    const clean = [...a, ...second];
    const corrupted = [...b, ...second];
    if (!givenIds) {
      pb.checkRoundTrip(clean, 'the clean sequence');
      pb.checkRoundTrip(corrupted, 'the corrupted sequence');
    }
    rows.push({ clean, corrupted, answers: [a[length - 1]], wrongs: [b[length - 1]] });
  }
  const source = generatorSource(task, { n, seed, length, pool: poolSource, tokens: options.tokens, tokenIds: options.tokenIds, bos: options.bos });
  return assembleDataset(task, source, tokenizer, rows, bos);
}
