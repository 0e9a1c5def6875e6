import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/fixtures: reference outputs copied into the repository, so a plain clone tests itself. */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const TINY = join(FIXTURES, 'tiny-gpt2');

export function readJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(join(...parts), 'utf8')) as T;
}

/** Flattens nested number arrays. */
export function flat(x: unknown): number[] {
  return Array.isArray(x) ? (x as unknown[]).flatMap(flat) : [x as number];
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
