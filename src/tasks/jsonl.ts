import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { checkDataset, type TaskDataset, type TaskText } from './dataset.js';

/**
 * User datasets in JSONL, one pair a line (DESIGN.md):
 *   {"clean": str|int[], "corrupted": str|int[], "answer": str|int|array, "wrong": str|int|array}
 * Strings are tokenized as written (for GPT-2 write answers with their leading space: " Mary");
 * int arrays are token ids. An answer or wrong is one token, or an array of single tokens that
 * forms a set (summed probability). Clean and corrupted must have the same token length, and
 * every row the length of the first. Blank lines are skipped; extra fields are ignored. Errors
 * name the file and the 1-based line.
 */
export function loadJsonlDataset(path: string, tokenizer: Tokenizer): TaskDataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CircuitryError(`${path}: cannot read the dataset (${(e as Error).message})`);
  }
  return parseJsonlDataset(text, path, tokenizer);
}

const FORMAT = '{"clean": str|int[], "corrupted": str|int[], "answer": str|int|array, "wrong": str|int|array}';

/** Parses JSONL text (see loadJsonlDataset); `file` names the source in messages and provenance. */
export function parseJsonlDataset(text: string, file: string, tokenizer: Tokenizer): TaskDataset {
  const clean: number[][] = [];
  const corrupted: number[][] = [];
  const answers: number[][] = [];
  const wrongs: number[][] = [];
  const texts: TaskText[] = [];
  let first: { line: number; len: number } | undefined;

  const lines = text.replace(/^\uFEFF/u, '').split(/\r?\n/u);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const at = `${file}:${line}`;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch (e) {
      throw new CircuitryError(`${at}: invalid JSON (${(e as Error).message}); each line must be one object ${FORMAT}`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new CircuitryError(`${at}: expected a JSON object ${FORMAT}, got ${Array.isArray(row) ? 'an array' : JSON.stringify(row)}`);
    }
    const obj = row as Record<string, unknown>;
    const c = prompt(obj, 'clean', at, tokenizer);
    const k = prompt(obj, 'corrupted', at, tokenizer);
    if (c.ids.length !== k.ids.length) {
      throw new CircuitryError(`${at}: clean is ${c.ids.length} tokens but corrupted is ${k.ids.length}; they must have the same token length`);
    }
    if (!first) first = { line, len: c.ids.length };
    else if (c.ids.length !== first.len) {
      throw new CircuitryError(
        `${at}: this row is ${c.ids.length} tokens but the first row (line ${first.line}) is ${first.len}; every row of a dataset must have the same token length (the engine runs one length per batch), so split the file by length`,
      );
    }
    const a = tokenSet(obj, 'answer', at, tokenizer);
    const w = tokenSet(obj, 'wrong', at, tokenizer);
    const both = a.ids.find((id) => w.ids.includes(id));
    if (both !== undefined) {
      throw new CircuitryError(`${at}: token ${both} (${JSON.stringify(tokenizer.tokenString(both))}) is both an answer and a wrong`);
    }
    clean.push(c.ids);
    corrupted.push(k.ids);
    answers.push(a.ids);
    wrongs.push(w.ids);
    texts.push({ clean: c.text, corrupted: k.text, answer: a.text, wrong: w.text });
  });
  if (!first) {
    throw new CircuitryError(`${file}: the dataset is empty; expected one JSON object per line, ${FORMAT}`);
  }
  const ds: TaskDataset = {
    name: basename(file, extname(file)),
    source: file,
    clean,
    corrupted,
    answers,
    wrongs,
    text: texts,
    seqLen: first.len,
  };
  checkDataset(ds, tokenizer.vocabSize, file);
  return ds;
}

function encodeField(text: string, field: string, at: string, tokenizer: Tokenizer): number[] {
  try {
    // a prompt as the model's tokenizer gives it (its BOS rule); answers are the text's own tokens
    return field === 'clean' || field === 'corrupted' ? tokenizer.encodePrompt(text) : tokenizer.encode(text);
  } catch (e) {
    throw new CircuitryError(`${at}: field '${field}': ${(e as Error).message}`);
  }
}

function checkIds(ids: readonly unknown[], field: string, at: string, vocabSize: number): number[] {
  const range = `0..${vocabSize - 1}`;
  ids.forEach((id, j) => {
    const where = field === 'clean' || field === 'corrupted' ? `field '${field}' element ${j}` : `field '${field}'`;
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      throw new CircuitryError(`${at}: ${where}: ${JSON.stringify(id)} is not a token id (expected an integer in ${range})`);
    }
    if (id < 0 || id >= vocabSize) {
      throw new CircuitryError(`${at}: ${where}: token id ${id} is out of the vocabulary range ${range}`);
    }
  });
  return ids as number[];
}

function prompt(obj: Record<string, unknown>, field: 'clean' | 'corrupted', at: string, tokenizer: Tokenizer): { ids: number[]; text: string } {
  const v = obj[field];
  if (v === undefined) throw new CircuitryError(`${at}: field '${field}' is missing; expected a string or an array of token ids`);
  if (typeof v === 'string') {
    const ids = encodeField(v, field, at, tokenizer);
    if (ids.length === 0) throw new CircuitryError(`${at}: field '${field}' is empty (no tokens)`);
    return { ids, text: v };
  }
  if (Array.isArray(v)) {
    if (v.length === 0) throw new CircuitryError(`${at}: field '${field}' is an empty array; expected token ids`);
    const ids = checkIds(v, field, at, tokenizer.vocabSize);
    return { ids, text: tokenizer.decode(ids) };
  }
  throw new CircuitryError(`${at}: field '${field}' must be a string or an array of token ids, got ${JSON.stringify(v)}`);
}

function oneToken(v: unknown, field: string, at: string, tokenizer: Tokenizer): number {
  if (typeof v === 'string') {
    const ids = encodeField(v, field, at, tokenizer);
    if (ids.length !== 1) {
      const shown = ids.map((id) => JSON.stringify(tokenizer.tokenString(id))).join(' ');
      throw new CircuitryError(
        `${at}: field '${field}' ${JSON.stringify(v)} is ${ids.length} tokens${ids.length ? ` (${shown}; ids ${ids.join(', ')})` : ''}; an answer must be a single token (a set of answers is an array of single tokens)`,
      );
    }
    return ids[0];
  }
  if (typeof v === 'number') {
    return checkIds([v], field, at, tokenizer.vocabSize)[0];
  }
  const expected = field.endsWith(']') ? 'a string or a token id' : 'a string, a token id or an array of them';
  throw new CircuitryError(`${at}: field '${field}' must be ${expected}, got ${JSON.stringify(v)}`);
}

function tokenSet(obj: Record<string, unknown>, field: 'answer' | 'wrong', at: string, tokenizer: Tokenizer): { ids: number[]; text: string } {
  const v = obj[field];
  if (v === undefined) throw new CircuitryError(`${at}: field '${field}' is missing; expected a string, a token id or an array of them`);
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) throw new CircuitryError(`${at}: field '${field}' is an empty array; expected at least one token`);
  const ids = items.map((x, j) => oneToken(x, Array.isArray(v) ? `${field}[${j}]` : field, at, tokenizer));
  const dup = ids.find((id, j) => ids.indexOf(id) !== j);
  if (dup !== undefined) throw new CircuitryError(`${at}: field '${field}' lists token ${dup} (${JSON.stringify(tokenizer.tokenString(dup))}) twice`);
  const text = items.map((x, j) => (typeof x === 'string' ? x : tokenizer.tokenString(ids[j]))).join('|');
  return { ids, text };
}
