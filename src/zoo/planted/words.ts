/**
 * The vocabulary of the yes/no planted models (planted-and, planted-or): colours are the
 * "marked" words, animals the plain ones.
 */
export const COLORS = ['red', 'green', 'blue', 'pink', 'gray', 'gold'] as const;
export const ANIMALS = ['cat', 'dog', 'fox', 'owl', 'bee', 'elk'] as const;
export const YES_NO_VOCAB: readonly string[] = ['<bos>', 'yes', 'no', ...COLORS, ...ANIMALS];

export const BOS = 0;
export const YES = 1;
export const NO = 2;
export const COLOR_IDS: readonly number[] = COLORS.map((_, i) => 3 + i);
export const ANIMAL_IDS: readonly number[] = ANIMALS.map((_, i) => 3 + COLORS.length + i);
export const WORD_IDS: readonly number[] = [...COLOR_IDS, ...ANIMAL_IDS];

export function isColor(id: number): boolean {
  return COLOR_IDS.includes(id);
}
