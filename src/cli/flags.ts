import { existsSync, readFileSync, statSync } from 'node:fs';
import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';

/**
 * Flag reading and checking shared by the commands: each flag is checked before anything heavy
 * loads, with a message naming it. Light on imports: the commands load tfjs and the library lazily.
 */

/** A flag yargs typed as string; undefined when absent. */
export function str(args: Record<string, unknown>, key: string): string | undefined {
  const v = args[key];
  if (Array.isArray(v)) throw new CircuitryError(`--${key}: given ${v.length} times (${v.map((x) => JSON.stringify(x)).join(', ')}); give it once`);
  return v === undefined || v === null ? undefined : String(v);
}

/** A numeric flag, checked; undefined when absent. */
export function num(args: Record<string, unknown>, key: string, what: string, ok: (n: number) => boolean): number | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) throw new CircuitryError(`--${key}: given ${v.length} times; give it once`);
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'boolean' || !Number.isFinite(n) || !ok(n)) throw new CircuitryError(`--${key}: expected ${what}, got ${JSON.stringify(v)}`);
  return n;
}

/** `--flag 0,1,2` as integers in [0, limit); undefined when absent. */
export function intList(args: Record<string, unknown>, key: string, limit?: number, what = 'position'): number[] | undefined {
  const text = str(args, key);
  if (text === undefined) return undefined;
  const parts = text.split(/[\s,]+/u).filter((p) => p !== '');
  if (parts.length === 0) throw new CircuitryError(`--${key}: give a comma-separated list of ${what}s, e.g. 0,1,2`);
  return parts.map((p) => {
    if (!/^\d+$/u.test(p)) throw new CircuitryError(`--${key}: '${p}' is not a non-negative integer ${what}`);
    const n = Number(p);
    if (limit !== undefined && n >= limit) throw new CircuitryError(`--${key}: ${what} ${n} is outside the prompt (${what}s 0..${limit - 1})`);
    return n;
  });
}

/** One of a fixed set of values. */
export function oneOf<T extends string>(args: Record<string, unknown>, key: string, allowed: readonly T[], fallback: T): T {
  const v = str(args, key) ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new CircuitryError(`--${key}: expected one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** The --out file: given, and not a folder. */
export function outFile(args: Record<string, unknown>, required = true): string | undefined {
  const out = str(args, 'out');
  if (!out) {
    if (required) throw new CircuitryError('--out: give the JSON file to write');
    return undefined;
  }
  if (existsSync(out) && statSync(out).isDirectory()) throw new CircuitryError(`--out: '${out}' is a folder; give a file name`);
  return out;
}

/** An input file flag: exists and is a file. */
export function inFile(args: Record<string, unknown>, key: string, what: string): string | undefined {
  const path = str(args, key);
  if (path === undefined) return undefined;
  if (!existsSync(path)) throw new CircuitryError(`--${key}: no such file '${path}'`);
  if (statSync(path).isDirectory()) throw new CircuitryError(`--${key}: '${path}' is a folder; expected ${what}`);
  return path;
}

/** The prompt from --prompt TEXT or --tokens ids (exactly one of them). */
export function promptFromFlags(args: Record<string, unknown>, tokenizer: Tokenizer, vocabSize: number, parseTokenIds: (text: string, vocab: number) => number[]): number[] {
  const text = str(args, 'prompt');
  const ids = str(args, 'tokens');
  if (text !== undefined && ids !== undefined) throw new CircuitryError('give --prompt TEXT or --tokens IDS, not both');
  if (ids !== undefined) {
    try {
      return parseTokenIds(ids, vocabSize);
    } catch (e) {
      throw e instanceof CircuitryError ? new CircuitryError(`--tokens: ${e.message}`) : e;
    }
  }
  if (text === undefined) throw new CircuitryError('give the prompt as --prompt TEXT or --tokens IDS');
  let out: number[];
  try {
    out = tokenizer.encodePrompt(text);
  } catch (e) {
    throw e instanceof CircuitryError ? new CircuitryError(`--prompt: ${e.message}`) : e;
  }
  if (out.length === 0) throw new CircuitryError('--prompt: the prompt encodes to no tokens');
  return out;
}

/**
 * A prompt set file: one prompt a line. `.jsonl` files hold a JSON string or an array of token
 * ids per line; any other file is plain text, one prompt a line. Blank lines are skipped.
 */
export function readPromptSet(path: string, tokenizer: Tokenizer, vocabSize: number, flag: string): number[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CircuitryError(`${flag}: cannot read '${path}' (${(e as Error).message})`);
  }
  const jsonl = /\.jsonl$/iu.test(path);
  const out: number[][] = [];
  text.split(/\r?\n/u).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${flag} ${path}:${i + 1}`;
    let ids: number[];
    if (jsonl) {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new CircuitryError(`${where}: not JSON (${(e as Error).message}); a .jsonl prompt set holds a string or an array of token ids per line`);
      }
      if (typeof v === 'string') ids = encode(v, where);
      else if (Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x))) {
        for (const id of v as number[]) if (id < 0 || id >= vocabSize) throw new CircuitryError(`${where}: token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
        ids = v as number[];
      } else throw new CircuitryError(`${where}: expected a string or a non-empty array of integer token ids`);
    } else ids = encode(line, where);
    if (ids.length === 0) throw new CircuitryError(`${where}: the prompt encodes to no tokens`);
    out.push(ids);
  });
  if (out.length === 0) throw new CircuitryError(`${flag}: '${path}' holds no prompts`);
  return out;

  function encode(s: string, where: string): number[] {
    try {
      return tokenizer.encodePrompt(s);
    } catch (e) {
      throw e instanceof CircuitryError ? new CircuitryError(`${where}: ${e.message}`) : e;
    }
  }
}

/** Column labels for positions: "i:token" (unique even when tokens repeat). */
export function positionNames(ids: readonly number[], tokenizer: Tokenizer): string[] {
  return ids.map((id, i) => {
    let t: string;
    try {
      t = tokenizer.tokenString(id);
    } catch {
      t = String(id);
    }
    return `${i}:${t}`;
  });
}

export function tokenText(tokenizer: Tokenizer, id: number): string {
  try {
    return tokenizer.tokenString(id);
  } catch {
    return `[${id}]`;
  }
}

/** JSON with non-finite numbers as null and typed arrays as lists. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v), 1) + '\n';
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(3) : x.toFixed(4);
}
