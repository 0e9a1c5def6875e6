import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import type { TaskDataset } from './dataset.js';
import { DOCSTRING_OPTION_HELP, docstringDataset } from './docstring.js';
import { GREATER_THAN_OPTION_HELP, greaterThanDataset } from './greater-than.js';
import { INDUCTION_OPTION_HELP, inductionDataset } from './induction.js';
import { IOI_OPTION_HELP, ioiDataset } from './ioi.js';
import { COMMON_OPTION_HELP, type TaskOptions } from './options.js';

export { datasetHash, checkDataset, type TaskDataset, type TaskText } from './dataset.js';
export { loadJsonlDataset, parseJsonlDataset } from './jsonl.js';
export { Rng } from './random.js';
export { COMMON_OPTION_HELP, type CommonOptions, type TaskOptions } from './options.js';
export { ioiDataset, IOI_TEMPLATES, IOI_CORRUPTIONS, IOI_ORDERS, type IoiOptions, type IoiCorruption, type IoiOrder } from './ioi.js';
export { greaterThanDataset, GREATER_THAN_TEMPLATE, type GreaterThanOptions } from './greater-than.js';
export { inductionDataset, type InductionOptions } from './induction.js';
export { docstringDataset, DOCSTRING_TEMPLATE, DOCSTRING_CORRUPTIONS, type DocstringOptions, type DocstringCorruption } from './docstring.js';

/** A built-in task: a record {name, describe, generate} with one generator signature. */
export interface TaskSpec {
  readonly name: string;
  /** One line for `circuitry tasks`. */
  readonly describe: string;
  /** The task's own options (besides n, seed, bos) with one line of help each. */
  readonly options: Readonly<Record<string, string>>;
  /** Deterministic from options.seed; every option is validated, unknown ones are errors. */
  generate(tokenizer: Tokenizer, options: TaskOptions): TaskDataset;
}

export const TASKS: Readonly<Record<string, TaskSpec>> = Object.freeze({
  ioi: {
    name: 'ioi',
    describe: 'indirect object identification (Wang et al. 2022): "When Mary and John went to the store, John gave a drink to" -> " Mary"; ABBA/BABA, abc or name-swap corruption',
    options: IOI_OPTION_HELP,
    generate: ioiDataset,
  },
  'greater-than': {
    name: 'greater-than',
    describe: 'greater-than (Hanna et al. 2023): "The war lasted from the year 1732 to the year 17" -> any of 33..99; corrupted with 1701',
    options: GREATER_THAN_OPTION_HELP,
    generate: greaterThanDataset,
  },
  induction: {
    name: 'induction',
    describe: 'induction: a random sequence of distinct tokens repeated, predict the next repeated token; corrupted with a different first copy',
    options: INDUCTION_OPTION_HELP,
    generate: inductionDataset,
  },
  docstring: {
    name: 'docstring',
    describe: 'docstring (Heimersheim & Janiak 2023): predict the next ":param" name of a Python docstring; corrupted with the definition\'s names changed',
    options: DOCSTRING_OPTION_HELP,
    generate: docstringDataset,
  },
});

/** The built-in task called `name`; an error listing the tasks otherwise. */
export function taskByName(name: string): TaskSpec {
  const t = Object.hasOwn(TASKS, name) ? TASKS[name] : undefined;
  if (!t) throw new CircuitryError(`unknown task '${name}'; the built-in tasks are ${Object.keys(TASKS).join(', ')} (or give a JSONL dataset file)`);
  return t;
}

/** Generates a built-in task's dataset by name. */
export function generateTask(name: string, tokenizer: Tokenizer, options: TaskOptions): TaskDataset {
  return taskByName(name).generate(tokenizer, options);
}

/** Every option a task accepts (common ones first), for help output. */
export function taskOptionHelp(spec: TaskSpec): Readonly<Record<string, string>> {
  return { ...COMMON_OPTION_HELP, ...spec.options };
}
