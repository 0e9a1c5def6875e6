import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';

/** Options every generator takes. */
export interface CommonOptions {
  /** Number of clean/corrupted pairs. */
  readonly n: number;
  /** Seed of the generator's PRNG: same seed, same dataset. */
  readonly seed: number;
  /** A token prepended to every clean and corrupted prompt (an id, or text that is one token, e.g. "<|endoftext|>"). */
  readonly bos?: number | string;
}

/** What the registry passes to a generator: the common options plus the task's own, unchecked. */
export type TaskOptions = CommonOptions & { readonly [key: string]: unknown };

/** Help text of the common options, for `circuitry tasks`. */
export const COMMON_OPTION_HELP: Readonly<Record<string, string>> = {
  n: 'number of clean/corrupted pairs (required)',
  seed: 'PRNG seed; same seed, same dataset (required)',
  bos: "token (id or one-token text) prepended to every prompt; default the tokenizer's own (BOS for Llama-3 and Gemma, none for GPT-2, NeoX, Qwen2)",
};

const MAX_N = 1_000_000;

/**
 * Reads a generator's options once, up front, with messages that name the task and the option
 * (`ioi: option 'corruption' must be one of abc, name-swap; got "xyz"`). Unknown keys are
 * errors, so a typo in a pipeline file does not silently fall back to a default.
 */
export class OptionReader {
  private readonly raw: Readonly<Record<string, unknown>>;

  constructor(
    readonly task: string,
    options: object,
    own: Readonly<Record<string, string>>,
  ) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new CircuitryError(`${task}: options must be an object with at least n and seed`);
    }
    this.raw = Object.fromEntries(Object.entries(options));
    const allowed = [...Object.keys(COMMON_OPTION_HELP), ...Object.keys(own)];
    for (const key of Object.keys(this.raw)) {
      if (!allowed.includes(key)) {
        throw new CircuitryError(`${task}: unknown option '${key}'; the options are ${allowed.join(', ')}`);
      }
    }
  }

  fail(key: string, expected: string): never {
    throw new CircuitryError(`${this.task}: option '${key}' must be ${expected}; got ${show(this.raw[key])}`);
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  n(): number {
    if (!this.has('n')) throw new CircuitryError(`${this.task}: option 'n' (the number of pairs) is required`);
    return this.int('n', { min: 1, max: MAX_N });
  }

  seed(): number {
    if (!this.has('seed')) throw new CircuitryError(`${this.task}: option 'seed' is required (datasets are deterministic from their seed)`);
    const v = this.raw.seed;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail('seed', 'an integer');
    return v;
  }

  int(key: string, range: { min: number; max: number; fallback?: number }): number {
    const v = this.raw[key] ?? range.fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range.min || v > range.max) {
      this.fail(key, `an integer in ${range.min}..${range.max}`);
    }
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(key, `one of ${values.join(', ')}`);
    return v as T;
  }

  /** A string matching `re` (e.g. two digits), `expected` describing it for the message. */
  matching(key: string, re: RegExp, fallback: string, expected: string): string {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'string' || !re.test(v)) this.fail(key, expected);
    return v;
  }

  /** A non-empty list of distinct values from `values`. */
  subset<T extends string>(key: string, values: readonly T[], fallback: readonly T[]): T[] {
    const v = this.raw[key] ?? fallback;
    const expected = `a non-empty list of distinct values from ${values.join(', ')}`;
    if (!Array.isArray(v) || v.length === 0 || new Set(v).size !== v.length) this.fail(key, expected);
    for (const x of v) if (typeof x !== 'string' || !values.includes(x as T)) this.fail(key, expected);
    return v as T[];
  }

  /** A non-empty list of distinct non-empty strings, or undefined when not given. */
  words(key: string): string[] | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || !v.every((w) => typeof w === 'string' && w.trim() !== '' && w === w.trim())) {
      this.fail(key, 'a non-empty list of words (strings without surrounding spaces)');
    }
    if (new Set(v).size !== v.length) this.fail(key, 'a list of distinct words');
    return v as string[];
  }

  /** A non-empty list of distinct integers in 0..vocabSize-1, or undefined when not given. */
  ids(key: string, vocabSize: number): number[] | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    const expected = `a non-empty list of distinct token ids in 0..${vocabSize - 1}`;
    if (!Array.isArray(v) || v.length === 0 || new Set(v).size !== v.length) this.fail(key, expected);
    for (const x of v) if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= vocabSize) this.fail(key, expected);
    return v as number[];
  }

  /** The raw value, for options with their own shape (validated by the caller). */
  value(key: string): unknown {
    return this.raw[key];
  }

  /** The `bos` prefix: the tokenizer's own (its family's BOS rule) when not given, else the one token id. */
  bos(tokenizer: Tokenizer): number[] {
    const v = this.raw.bos;
    if (v === undefined) return [...tokenizer.prefix];
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v >= tokenizer.vocabSize) this.fail('bos', `a token id in 0..${tokenizer.vocabSize - 1} or text that is one token`);
      return [v];
    }
    if (typeof v !== 'string') this.fail('bos', 'a token id or text that is one token');
    let ids: number[];
    try {
      ids = tokenizer.encode(v);
    } catch (e) {
      throw new CircuitryError(`${this.task}: option 'bos' ${show(v)}: ${(e as Error).message}`);
    }
    if (ids.length !== 1) this.fail('bos', `one token (it is ${ids.length} tokens for the ${tokenizer.kind} tokenizer)`);
    return ids;
  }
}

export function show(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
