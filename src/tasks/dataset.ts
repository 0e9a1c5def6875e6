import { createHash } from 'node:crypto';
import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';

/** One example in words, for reports (the ids are the truth; this is how they read). */
export interface TaskText {
  readonly clean: string;
  readonly corrupted: string;
  readonly answer: string;
  readonly wrong: string;
}

/**
 * A task as the patching engine consumes it: row i is one clean/corrupted pair whose metric is
 * read at the last position. Every clean and corrupted row has the same length `seqLen` (the
 * engine runs one length per batch; generators choose single-token words so that lengths
 * never vary). `answers[i]` and `wrongs[i]` are token sets whose probabilities are summed
 * (one token for most tasks; greater-than's "any year after YY" is a set).
 */
export interface TaskDataset {
  readonly name: string;
  /** Provenance: the generator and its options (with the seed), or the file path. */
  readonly source: string;
  readonly clean: number[][];
  readonly corrupted: number[][];
  readonly answers: number[][];
  readonly wrongs: number[][];
  readonly text?: TaskText[];
  readonly seqLen: number;
}

/**
 * sha256 (hex) of the dataset's token ids: clean, corrupted, answers and wrongs, in row order.
 * Names, sources and text do not enter it, so the same data from a generator and from a JSONL
 * file hash alike.
 */
export function datasetHash(ds: Pick<TaskDataset, 'clean' | 'corrupted' | 'answers' | 'wrongs'>): string {
  const h = createHash('sha256');
  h.update('circuitry-dataset-v1\n');
  for (const [field, rows] of [['clean', ds.clean], ['corrupted', ds.corrupted], ['answers', ds.answers], ['wrongs', ds.wrongs]] as const) {
    h.update(`${field}:${rows.length}\n`);
    for (const row of rows) h.update(`${row.join(',')}\n`);
  }
  return h.digest('hex');
}

/**
 * Checks the invariants every dataset holds: at least one row; the four lists the same
 * length; every clean and corrupted row `seqLen` long; non-empty answer and wrong sets that do
 * not share a token; all ids integers in 0..vocabSize-1. `where` prefixes the messages.
 */
export function checkDataset(ds: TaskDataset, vocabSize: number, where = `dataset '${ds.name}'`): void {
  const fail = (msg: string): never => {
    throw new CircuitryError(`${where}: ${msg}`);
  };
  const n = ds.clean.length;
  if (n === 0) fail('has no rows');
  for (const [field, rows] of [['corrupted', ds.corrupted], ['answers', ds.answers], ['wrongs', ds.wrongs]] as const) {
    if (rows.length !== n) fail(`has ${n} clean rows but ${rows.length} ${field}`);
  }
  if (ds.text && ds.text.length !== n) fail(`has ${n} rows but ${ds.text.length} text entries`);
  if (!Number.isInteger(ds.seqLen) || ds.seqLen <= 0) fail(`seqLen must be a positive integer, got ${ds.seqLen}`);
  const ids = (field: string, i: number, row: readonly number[]): void => {
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) fail(`row ${i} ${field}: token id ${id} is out of the vocabulary range 0..${vocabSize - 1}`);
    }
  };
  for (let i = 0; i < n; i++) {
    for (const [field, row] of [['clean', ds.clean[i]], ['corrupted', ds.corrupted[i]]] as const) {
      if (row.length !== ds.seqLen) fail(`row ${i} ${field} has ${row.length} tokens, expected seqLen ${ds.seqLen}`);
      ids(field, i, row);
    }
    if (ds.answers[i].length === 0) fail(`row ${i} has an empty answer set`);
    if (ds.wrongs[i].length === 0) fail(`row ${i} has an empty wrong set`);
    ids('answers', i, ds.answers[i]);
    ids('wrongs', i, ds.wrongs[i]);
    const both = ds.answers[i].filter((a) => ds.wrongs[i].includes(a));
    if (both.length > 0) fail(`row ${i}: token ${both[0]} is both an answer and a wrong`);
  }
}

/** One generated pair before the common prefix is added. */
export interface GeneratedRow {
  readonly clean: number[];
  readonly corrupted: number[];
  readonly answers: number[];
  readonly wrongs: number[];
  /** How the answer and wrong sets read in `text` (default: their token strings joined by '|'). */
  readonly answerText?: string;
  readonly wrongText?: string;
}

/**
 * Assembles a generator's rows into a checked dataset: prepends `prefix` (the bos option) to
 * every prompt, writes the text of each row, and verifies the dataset invariants.
 */
export function assembleDataset(
  name: string,
  source: string,
  tokenizer: Tokenizer,
  rows: readonly GeneratedRow[],
  prefix: readonly number[],
): TaskDataset {
  const clean = rows.map((r) => [...prefix, ...r.clean]);
  const corrupted = rows.map((r) => [...prefix, ...r.corrupted]);
  const setText = (ids: readonly number[]): string => ids.map((i) => tokenizer.tokenString(i)).join('|');
  const text = rows.map((r, i) => ({
    clean: tokenizer.decode(clean[i]),
    corrupted: tokenizer.decode(corrupted[i]),
    answer: r.answerText ?? setText(r.answers),
    wrong: r.wrongText ?? setText(r.wrongs),
  }));
  const ds: TaskDataset = {
    name,
    source,
    clean,
    corrupted,
    answers: rows.map((r) => [...r.answers]),
    wrongs: rows.map((r) => [...r.wrongs]),
    text,
    seqLen: clean[0]?.length ?? 0,
  };
  checkDataset(ds, tokenizer.vocabSize, name);
  return ds;
}

/** The `source` of a generated dataset: the task and its resolved options, e.g. `ioi {"n":8,"seed":1,...}`. */
export function generatorSource(task: string, options: Readonly<Record<string, unknown>>): string {
  const entries = Object.entries(options).filter(([, v]) => v !== undefined);
  return `${task} ${JSON.stringify(Object.fromEntries(entries))}`;
}
