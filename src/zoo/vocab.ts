import { CircuitryError } from '../errors.js';

/**
 * The word-level vocabulary shared by the zoo's trained models: one token per word, token id =
 * position in ZOO_VOCAB. It holds exactly what the built-in tasks need in their small-vocabulary
 * form (IOI, greater-than, induction, docstring), so that every generator in src/tasks runs on it
 * with its default word lists.
 *
 * The order is part of every trained zoo checkpoint: append new words at the end, never
 * reorder or remove (that would silently change what the shipped weights mean).
 */
export const ZOO_WORDS = {
  /** Padding, beginning and end of sequence. */
  special: ['<pad>', '<bos>', '<eos>'],
  /** IOI names (each a single GPT-2 token with a leading space, too). */
  names: ['Mary', 'John', 'Tom', 'James', 'Dan', 'Sid', 'Martin', 'Amy', 'Paul', 'Kate', 'Lisa', 'Anna', 'Ben', 'Sam', 'Mark', 'Jack', 'Sarah', 'Emma', 'Rose', 'Alice'],
  /** The fixed words of the IOI templates. */
  ioi: ['When', 'After', 'While', 'As', 'Once', 'and', 'went', 'to', 'the', 'were', 'at', 'in', 'arrived', 'met', 'walked', 'got', 'gave', 'handed', 'passed', 'sent', 'threw', 'brought', 'a', ','],
  /** IOI places ("went to the [PLACE]"). */
  places: ['store', 'school', 'park', 'garden', 'office', 'station', 'hospital', 'restaurant', 'house', 'beach'],
  /** IOI objects ("gave a [OBJECT] to"): consonant-initial, so "a" always fits. */
  objects: ['drink', 'book', 'ring', 'ball', 'bottle', 'bone', 'computer', 'necklace', 'snack', 'letter'],
  /** The fixed words of the greater-than template. */
  greaterThan: ['The', 'lasted', 'from', 'year'],
  /** Greater-than events ("The [NOUN] lasted from the year ..."). */
  events: ['war', 'siege', 'drought', 'famine', 'reign', 'journey', 'strike', 'plague'],
  /** Two-digit year tokens: a year 1732 is the two tokens "17" "32", as GPT-2 splits " 1732". */
  years: Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')),
  /** Abstract tokens for induction sequences: no meaning, no other use. */
  abstract: Array.from({ length: 30 }, (_, i) => `t${i}`),
  /** The fixed symbols of the docstring template (a word tokenizer splits "):" into ")" ":"). */
  docstring: ['def', '(', ')', 'self', ':', '"""', 'param'],
  /** Docstring parameter names. */
  params: ['size', 'name', 'data', 'path', 'mode', 'key', 'value', 'count', 'user', 'text'],
  /** Docstring function names. */
  functions: ['run', 'get', 'check', 'set'],
} as const satisfies Record<string, readonly string[]>;

export type ZooWordGroup = keyof typeof ZOO_WORDS;

/** All words in id order: the groups above concatenated, each word kept at its first occurrence. */
export const ZOO_VOCAB: readonly string[] = Object.freeze([...new Set(Object.values(ZOO_WORDS).flat())]);

const INDEX: ReadonlyMap<string, number> = new Map(ZOO_VOCAB.map((w, i) => [w, i]));

export const ZOO_VOCAB_SIZE = ZOO_VOCAB.length;

/** The id of a zoo word; throws naming the word when it is not in the vocabulary. */
export function zooId(word: string): number {
  const id = INDEX.get(word);
  if (id === undefined) {
    throw new CircuitryError(`'${word}' is not a word of the zoo vocabulary (${ZOO_VOCAB_SIZE} words, src/zoo/vocab.ts)`);
  }
  return id;
}

/** Ids of several zoo words (same errors as zooId). */
export function zooIds(words: readonly string[]): number[] {
  return words.map(zooId);
}

/** Whether a word is in the zoo vocabulary. */
export function isZooWord(word: string): boolean {
  return INDEX.has(word);
}

export const ZOO_PAD_ID = zooId('<pad>');
export const ZOO_BOS_ID = zooId('<bos>');
export const ZOO_EOS_ID = zooId('<eos>');
