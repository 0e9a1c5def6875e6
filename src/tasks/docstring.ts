import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { assembleDataset, generatorSource, type GeneratedRow, type TaskDataset } from './dataset.js';
import { OptionReader, type CommonOptions } from './options.js';
import { PromptBuilder, parseTemplate } from './prompt.js';
import { Rng } from './random.js';
import { CANDIDATE_DESCRIPTION_WORDS, CANDIDATE_FUNCTIONS, CANDIDATE_PARAMS, chooseWords } from './words.js';

/**
 * Docstring (Heimersheim & Janiak 2023): complete the next `:param` of a Python docstring.
 * This generator's variant: a function with `self` and four parameters A B C D, a one-line
 * description of three random words, A and B documented (two random words each), and the
 * prompt ending at the third `:param`, so the answer is " C" (the next undocumented parameter
 * in definition order).
 *
 *   def {F}(self, {A}, {B}, {C}, {D}):
 *       """{W} {W} {W}
 *
 *       :param {A}: {W} {W}
 *       :param {B}: {W} {W}
 *       :param                                   -> " C"
 *
 * Wrongs: the set {A, B, D}, the clean prompt's other parameters (summed probability; its log
 * is a smooth maximum, close to the paper's "best distractor" metric). Corruptions replace
 * names with fresh parameter names, none from the clean prompt:
 * `def` (default) all four names in the definition, so C appears nowhere;
 * `doc` the two documented names; `both` both, independently.
 * Description words are never parameter names.
 */
export const DOCSTRING_TEMPLATE =
  'def {F}(self, {P1}, {P2}, {P3}, {P4}):\n    """{W1} {W2} {W3}\n\n    :param {Q1}: {W4} {W5}\n    :param {Q2}: {W6} {W7}\n    :param';

export const DOCSTRING_CORRUPTIONS = ['def', 'doc', 'both'] as const;
export type DocstringCorruption = (typeof DOCSTRING_CORRUPTIONS)[number];

export interface DocstringOptions extends CommonOptions {
  readonly corruption?: DocstringCorruption;
  readonly params?: readonly string[];
  readonly functions?: readonly string[];
  readonly words?: readonly string[];
}

export const DOCSTRING_OPTION_HELP: Readonly<Record<string, string>> = {
  corruption: `${DOCSTRING_CORRUPTIONS.join(' | ')}: names replaced in the definition, the documented names, or both (default def)`,
  params: 'parameter names, each one token with its leading space (default: built-in, filtered; def needs 8, doc 6, both 10)',
  functions: 'function names (default: built-in, filtered)',
  words: 'description words, one token with and without a leading space (default: built-in, filtered)',
};

const SLOTS = ['F', 'P1', 'P2', 'P3', 'P4', 'Q1', 'Q2', 'W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'W7'];

export function docstringDataset(tokenizer: Tokenizer, options: DocstringOptions): TaskDataset {
  const task = 'docstring';
  const opt = new OptionReader(task, options, DOCSTRING_OPTION_HELP);
  const n = opt.n();
  const seed = opt.seed();
  const corruption = opt.oneOf('corruption', DOCSTRING_CORRUPTIONS, 'def');
  const bos = opt.bos(tokenizer);
  const pb = new PromptBuilder(task, tokenizer);
  const template = parseTemplate(DOCSTRING_TEMPLATE, SLOTS, task);

  const fresh = corruption === 'def' ? 4 : corruption === 'doc' ? 2 : 6;
  const params = chooseWords(task, tokenizer, { option: 'params', what: 'parameter names', given: opt.words('params'), candidates: CANDIDATE_PARAMS, form: 'spaced', need: 4 + fresh });
  const functions = chooseWords(task, tokenizer, { option: 'functions', what: 'function names', given: opt.words('functions'), candidates: CANDIDATE_FUNCTIONS, form: 'spaced', need: 1 });
  const givenWords = opt.words('words');
  const clash = givenWords?.filter((w) => params.includes(w)) ?? [];
  if (clash.length > 0) throw new CircuitryError(`${task}: option 'words': ${clash.join(', ')} ${clash.length === 1 ? 'is' : 'are'} also parameter names; description words must not be`);
  const words = chooseWords(task, tokenizer, {
    option: 'words', what: 'description words', given: givenWords, candidates: CANDIDATE_DESCRIPTION_WORDS.filter((w) => !params.includes(w)), form: 'both', need: 1,
  });

  const rng = new Rng(seed);
  const rows: GeneratedRow[] = [];
  for (let i = 0; i < n; i++) {
    const picked = rng.sample(params, 4 + fresh);
    const [a, b, c, d] = picked;
    const others = picked.slice(4);
    const desc: Record<string, string> = {};
    for (let k = 1; k <= 7; k++) desc[`W${k}`] = rng.pick(words);
    const F = rng.pick(functions);
    const clean = { F, ...desc, P1: a, P2: b, P3: c, P4: d, Q1: a, Q2: b };
    const defNames = corruption === 'doc' ? {} : { P1: others[0], P2: others[1], P3: others[2], P4: others[3] };
    const docNames = corruption === 'def' ? {} : corruption === 'doc' ? { Q1: others[0], Q2: others[1] } : { Q1: others[4], Q2: others[5] };
    rows.push({
      clean: pb.render(template, clean),
      corrupted: pb.render(template, { ...clean, ...defNames, ...docNames }),
      answers: [pb.word(c, true)],
      wrongs: [a, b, d].map((w) => pb.word(w, true)),
    });
  }
  const source = generatorSource(task, { n, seed, corruption, params: options.params, functions: options.functions, words: options.words, bos: options.bos });
  return assembleDataset(task, source, tokenizer, rows, bos);
}
