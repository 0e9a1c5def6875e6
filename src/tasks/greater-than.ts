import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { assembleDataset, generatorSource, type GeneratedRow, type TaskDataset } from './dataset.js';
import { OptionReader, type CommonOptions } from './options.js';
import { PromptBuilder, parseTemplate } from './prompt.js';
import { Rng } from './random.js';
import { CANDIDATE_EVENTS, chooseWords, singleToken, tokenProblem } from './words.js';

/**
 * Greater-than (Hanna et al. 2023): "The war lasted from the year 1732 to the year 17" -> any
 * two-digit continuation greater than 32. The year is two tokens, the century {XX} (" 17") and
 * the two digits {YY} ("32"), which is how GPT-2's BPE splits " 1732"; on a word vocabulary they
 * are the words "17" and "32". The corrupted prompt has YY = 01 (every year then counts as
 * greater), the right answers are the set of two-digit tokens > YY, the wrongs those <= YY.
 *
 * Start years whose text does not re-tokenize as century + two digits are never drawn (for
 * GPT-2 and century 17 that is only 1700, a single token " 1700").
 */
export const GREATER_THAN_TEMPLATE = 'The {NOUN} lasted from the year {XX}{YY} to the year {XX}';

export interface GreaterThanOptions extends CommonOptions {
  /** Two-digit century, default "17". */
  readonly century?: string;
  /** Smallest and largest start YY (defaults 2 and 98, so both answer sets are never empty). */
  readonly minYear?: number;
  readonly maxYear?: number;
  /** The corrupted prompt's YY, default "01". */
  readonly corruptYear?: string;
  /** Event nouns for {NOUN}. */
  readonly nouns?: readonly string[];
}

export const GREATER_THAN_OPTION_HELP: Readonly<Record<string, string>> = {
  century: 'two-digit century XX, default "17"',
  minYear: 'smallest start YY, 1..98, default 2',
  maxYear: 'largest start YY, minYear..98, default 98',
  corruptYear: 'YY of the corrupted prompt, default "01"',
  nouns: 'event nouns, each one token with its leading space (default: built-in, filtered to single tokens)',
};

const twoDigits = (y: number): string => String(y).padStart(2, '0');

/** Greater-than pairs: answers = tokens of the years YY+1..99, wrongs = 00..YY. */
export function greaterThanDataset(tokenizer: Tokenizer, options: GreaterThanOptions): TaskDataset {
  const task = 'greater-than';
  const opt = new OptionReader(task, options, GREATER_THAN_OPTION_HELP);
  const n = opt.n();
  const seed = opt.seed();
  const century = opt.matching('century', /^\d\d$/u, '17', 'two digits as a string, e.g. "17"');
  const corruptYear = opt.matching('corruptYear', /^\d\d$/u, '01', 'two digits as a string, e.g. "01"');
  const minYear = opt.int('minYear', { min: 1, max: 98, fallback: 2 });
  const maxYear = opt.int('maxYear', { min: minYear, max: 98, fallback: 98 });
  const bos = opt.bos(tokenizer);
  const pb = new PromptBuilder(task, tokenizer);
  const template = parseTemplate(GREATER_THAN_TEMPLATE, ['NOUN', 'XX', 'YY'], task);

  const nouns = chooseWords(task, tokenizer, { option: 'nouns', what: 'event nouns', given: opt.words('nouns'), candidates: CANDIDATE_EVENTS, form: 'spaced', need: 1 });
  const years = Array.from({ length: 100 }, (_, y) => twoDigits(y));
  const notOne = years.filter((y) => singleToken(tokenizer, y) === undefined);
  if (notOne.length > 0) {
    throw new CircuitryError(
      `${task}: the answer sets need every two-digit year 00..99 to be one token, but for the ${tokenizer.kind} tokenizer ${notOne.map((y) => tokenProblem(tokenizer, y)).join(', ')} ${notOne.length === 1 ? 'is' : 'are'} not`,
    );
  }
  const yearIds = years.map((y) => pb.word(y, false));
  if (singleToken(tokenizer, ` ${century}`) === undefined) {
    throw new CircuitryError(`${task}: option 'century': ${tokenProblem(tokenizer, ` ${century}`)} is not one token for the ${tokenizer.kind} tokenizer`);
  }

  // the years whose prompt re-tokenizes as " XX" "YY" (probe with the first noun)
  const splits = (yy: string): boolean => {
    try {
      pb.render(template, { NOUN: nouns[0], XX: century, YY: yy });
      return true;
    } catch (e) {
      if (e instanceof CircuitryError) return false;
      throw e;
    }
  };
  if (!splits(corruptYear)) {
    throw new CircuitryError(`${task}: option 'corruptYear': the year ${century}${corruptYear} does not tokenize as " ${century}" + "${corruptYear}" for the ${tokenizer.kind} tokenizer; choose another`);
  }
  const starts: number[] = [];
  for (let y = minYear; y <= maxYear; y++) if (splits(twoDigits(y))) starts.push(y);
  if (starts.length === 0) {
    throw new CircuitryError(`${task}: no year ${century}${twoDigits(minYear)}..${century}${twoDigits(maxYear)} tokenizes as century + two digits for the ${tokenizer.kind} tokenizer`);
  }

  const rng = new Rng(seed);
  const rows: GeneratedRow[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.pick(starts);
    const NOUN = rng.pick(nouns);
    rows.push({
      clean: pb.render(template, { NOUN, XX: century, YY: twoDigits(y) }),
      corrupted: pb.render(template, { NOUN, XX: century, YY: corruptYear }),
      answers: yearIds.slice(y + 1),
      wrongs: yearIds.slice(0, y + 1),
      answerText: `${twoDigits(y + 1)}..99`,
      wrongText: `00..${twoDigits(y)}`,
    });
  }
  const source = generatorSource(task, { n, seed, century, minYear, maxYear, corruptYear, nouns: options.nouns, bos: options.bos });
  return assembleDataset(task, source, tokenizer, rows, bos);
}
