import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { assembleDataset, generatorSource, type GeneratedRow, type TaskDataset } from './dataset.js';
import { OptionReader, type CommonOptions } from './options.js';
import { PromptBuilder, parseTemplate, sameLengthTemplates, slotsOf, type Template } from './prompt.js';
import { Rng } from './random.js';
import { CANDIDATE_NAMES, CANDIDATE_OBJECTS, CANDIDATE_PLACES, chooseWords } from './words.js';

/**
 * Indirect object identification (Wang et al. 2022). "When Mary and John went to the store,
 * John gave a drink to" -> " Mary": two names are introduced, one of them (the subject S) is
 * repeated, and the model must name the other (the indirect object IO).
 *
 * Slots: {N1} {N2} the two names in the order introduced, {S} the repeated subject, {PLACE},
 * {OBJECT}. In the ABBA order N1 is the IO ("Mary and John ..., John"), in BABA N1 is S. All
 * built-in templates are 14 tokens for GPT-2's BPE and for the zoo vocabulary (every word is
 * one token in both), so they mix freely in one dataset.
 */
export const IOI_TEMPLATES: readonly string[] = [
  'When {N1} and {N2} went to the {PLACE}, {S} gave a {OBJECT} to',
  'After {N1} and {N2} went to the {PLACE}, {S} gave a {OBJECT} to',
  'While {N1} and {N2} were at the {PLACE}, {S} handed a {OBJECT} to',
  'When {N1} and {N2} arrived at the {PLACE}, {S} passed a {OBJECT} to',
  'After {N1} and {N2} met at the {PLACE}, {S} sent a {OBJECT} to',
  'As {N1} and {N2} walked to the {PLACE}, {S} threw a {OBJECT} to',
  'Once {N1} and {N2} got to the {PLACE}, {S} brought a {OBJECT} to',
  'While {N1} and {N2} were in the {PLACE}, {S} handed a {OBJECT} to',
];

export const IOI_ORDERS = ['ABBA', 'BABA'] as const;
export type IoiOrder = (typeof IOI_ORDERS)[number];

/**
 * `abc`: the three name slots get three other names, distinct from each other and from the
 * clean IO and S (Wang et al.'s ABC distribution: no name repeats, so nothing singles out the
 * IO). `name-swap`: the second mention of S becomes the IO ("..., Mary gave a drink to"), so
 * the repeated name, and with it the right answer, flips to the clean S.
 */
export const IOI_CORRUPTIONS = ['abc', 'name-swap'] as const;
export type IoiCorruption = (typeof IOI_CORRUPTIONS)[number];

export interface IoiOptions extends CommonOptions {
  readonly corruption?: IoiCorruption;
  /** Orders used, cycled through row by row (default both: half ABBA, half BABA). */
  readonly orders?: readonly IoiOrder[];
  /** Built-in template indices and/or custom templates with the slots above (default: all built-ins). */
  readonly templates?: readonly (number | string)[];
  readonly names?: readonly string[];
  readonly places?: readonly string[];
  readonly objects?: readonly string[];
}

export const IOI_OPTION_HELP: Readonly<Record<string, string>> = {
  corruption: `${IOI_CORRUPTIONS.join(' | ')} (default abc)`,
  orders: `subset of ${IOI_ORDERS.join(', ')}, cycled row by row (default both)`,
  templates: `built-in template indices 0..${IOI_TEMPLATES.length - 1} and/or custom templates with {N1} {N2} {S} [{PLACE} {OBJECT}] (default all built-ins of the most common length)`,
  names: 'names, each one token with its leading space (default: the built-in names the tokenizer has)',
  places: 'places for {PLACE} (default: built-in, filtered likewise)',
  objects: 'objects for {OBJECT} (default: built-in, filtered likewise)',
};

const SLOTS = ['N1', 'N2', 'S', 'PLACE', 'OBJECT'];

/** IOI pairs: answer the IO name, wrong the S name (each one token with its leading space). */
export function ioiDataset(tokenizer: Tokenizer, options: IoiOptions): TaskDataset {
  const task = 'ioi';
  const opt = new OptionReader(task, options, IOI_OPTION_HELP);
  const n = opt.n();
  const seed = opt.seed();
  const corruption = opt.oneOf('corruption', IOI_CORRUPTIONS, 'abc');
  const orders = opt.subset('orders', IOI_ORDERS, IOI_ORDERS);
  const bos = opt.bos(tokenizer);
  const pb = new PromptBuilder(task, tokenizer);

  const chosen = readTemplates(opt);
  const needs = (slot: string): boolean => chosen.templates.some((t) => slotsOf(t).has(slot));
  const names = chooseWords(task, tokenizer, {
    option: 'names', what: 'names', given: opt.words('names'), candidates: CANDIDATE_NAMES, form: 'spaced', need: corruption === 'abc' ? 5 : 2,
  });
  const places = needs('PLACE')
    ? chooseWords(task, tokenizer, { option: 'places', what: 'places', given: opt.words('places'), candidates: CANDIDATE_PLACES, form: 'spaced', need: 1 })
    : [''];
  const objects = needs('OBJECT')
    ? chooseWords(task, tokenizer, { option: 'objects', what: 'objects', given: opt.words('objects'), candidates: CANDIDATE_OBJECTS, form: 'spaced', need: 1 })
    : [''];

  // one token length per dataset: explicit templates must agree; by default keep the most common length
  const lengths = chosen.templates.map((t) => pb.length(t));
  let templates = chosen.templates;
  if (chosen.explicit && new Set(lengths).size > 1) {
    const list = chosen.templates.map((t, i) => `${JSON.stringify(t.text)} (${lengths[i]} tokens)`).join(', ');
    throw new CircuitryError(`${task}: option 'templates': the templates have different token lengths for the ${tokenizer.kind} tokenizer: ${list}; a dataset needs one length, so pick templates of equal length`);
  }
  if (!chosen.explicit) templates = sameLengthTemplates(chosen.templates, (t) => pb.length(t)).kept;

  const rng = new Rng(seed);
  const rows: GeneratedRow[] = [];
  for (let i = 0; i < n; i++) {
    const t = rng.pick(templates);
    const order = orders[i % orders.length];
    const [io, s] = rng.sample(names, 2);
    const PLACE = rng.pick(places);
    const OBJECT = rng.pick(objects);
    const clean = order === 'ABBA' ? { N1: io, N2: s, S: s } : { N1: s, N2: io, S: s };
    let bad: Record<string, string>;
    if (corruption === 'abc') {
      const [a, b, c] = rng.sample(names.filter((w) => w !== io && w !== s), 3);
      bad = { N1: a, N2: b, S: c };
    } else {
      bad = { ...clean, S: io };
    }
    rows.push({
      clean: pb.render(t, { ...clean, PLACE, OBJECT }),
      corrupted: pb.render(t, { ...bad, PLACE, OBJECT }),
      answers: [pb.word(io, true)],
      wrongs: [pb.word(s, true)],
    });
  }
  const source = generatorSource(task, {
    n, seed, corruption, orders,
    templates: chosen.explicit ? options.templates : templates.map((t) => IOI_TEMPLATES.indexOf(t.text)),
    names: options.names, places: options.places, objects: options.objects, bos: options.bos,
  });
  return assembleDataset(task, source, tokenizer, rows, bos);
}

function readTemplates(opt: OptionReader): { templates: Template[]; explicit: boolean } {
  const where = `${opt.task}: option 'templates'`;
  const raw = opt.value('templates');
  if (raw === undefined) return { templates: IOI_TEMPLATES.map((t) => parseTemplate(t, SLOTS, where)), explicit: false };
  if (!Array.isArray(raw) || raw.length === 0) opt.fail('templates', `a non-empty list of template indices 0..${IOI_TEMPLATES.length - 1} or template strings`);
  const templates = raw.map((x: unknown) => {
    if (typeof x === 'number') {
      if (!Number.isInteger(x) || x < 0 || x >= IOI_TEMPLATES.length) opt.fail('templates', `a list of template indices 0..${IOI_TEMPLATES.length - 1} or template strings`);
      return parseTemplate(IOI_TEMPLATES[x], SLOTS, where);
    }
    if (typeof x !== 'string') return opt.fail('templates', 'a list of template indices or template strings');
    const t = parseTemplate(x, SLOTS, where);
    for (const slot of ['N1', 'N2', 'S']) {
      const count = t.pieces.filter((p) => 'slot' in p && p.slot === slot).length;
      if (count !== 1) throw new CircuitryError(`${where}: template ${JSON.stringify(x)} must contain {${slot}} exactly once (it has ${count})`);
    }
    return t;
  });
  return { templates, explicit: true };
}
