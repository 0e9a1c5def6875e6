import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import { CircuitryError } from '../errors.js';
import { ByteLevelBpe, bpeSpecFromTokenizerJson, displayBytes } from './bpe.js';

/** Text <-> token ids for one model. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** 'bpe' (tokenizer.json), 'r50k' (GPT-2 built in), 'word' (zoo vocabularies) or 'ids' (none) */
  readonly kind: string;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** One token for display: the text it stands for ('Ġthe' shows as ' the'). */
  tokenString(id: number): string;
}

/** The vocabulary size of GPT-2's r50k encoding (50,000 merges + 256 bytes + <|endoftext|>). */
export const GPT2_VOCAB_SIZE = 50257;

function checkId(id: number, vocabSize: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new CircuitryError(`token id ${id} is out of range for the ${what} (ids 0..${vocabSize - 1})`);
  }
}

/** Byte-level BPE read from a HuggingFace tokenizer.json. */
export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe';
  readonly vocabSize: number;
  private readonly bpe: ByteLevelBpe;

  constructor(tokenizerJson: unknown, file = 'tokenizer.json') {
    this.bpe = new ByteLevelBpe(bpeSpecFromTokenizerJson(tokenizerJson, file));
    this.vocabSize = this.bpe.vocabSize;
  }

  static fromFile(path: string): BpeTokenizer {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new CircuitryError(`${path}: cannot read the tokenizer (${(e as Error).message})`);
    }
    return new BpeTokenizer(raw, path);
  }

  encode(text: string): number[] {
    return this.bpe.encode(text);
  }
  decode(ids: readonly number[]): string {
    return this.bpe.decode(ids);
  }
  tokenString(id: number): string {
    return this.bpe.tokenString(id);
  }
}

let r50kRanks: TiktokenBPE | undefined;
let r50kEncoder: Tiktoken | undefined;
let r50kBytes: Uint8Array[] | undefined;

/** The r50k rank table shipped inside js-tiktoken (0.5 MB), loaded on first use. */
function loadR50kRanks(): TiktokenBPE {
  // require keeps tokenizerForFolder synchronous and the table out of every import of this file
  r50kRanks ??= createRequire(import.meta.url)('js-tiktoken/ranks/r50k_base') as TiktokenBPE;
  return r50kRanks;
}

/**
 * GPT-2's own encoding (r50k_base) from js-tiktoken's bundled ranks: used when a GPT-2-sized
 * model folder has no tokenizer.json. Never touches the network. <|endoftext|> in the text is
 * read as the special token 50256.
 */
export class R50kTokenizer implements Tokenizer {
  readonly kind = 'r50k';
  readonly vocabSize = GPT2_VOCAB_SIZE;
  private readonly enc: Tiktoken;

  constructor() {
    r50kEncoder ??= new Tiktoken(loadR50kRanks());
    this.enc = r50kEncoder;
  }

  encode(text: string): number[] {
    return this.enc.encode(text, 'all');
  }
  decode(ids: readonly number[]): string {
    for (const id of ids) checkId(id, this.vocabSize, 'GPT-2 tokenizer');
    return this.enc.decode([...ids]);
  }
  tokenString(id: number): string {
    checkId(id, this.vocabSize, 'GPT-2 tokenizer');
    return displayBytes(r50kTokenBytes()[id]);
  }
}

/** Each r50k token's bytes, decoded from the rank table (lines of "<prefix> <first rank> <base64>..."). */
function r50kTokenBytes(): Uint8Array[] {
  if (r50kBytes) return r50kBytes;
  const table: Uint8Array[] = [];
  const ranks = loadR50kRanks();
  for (const line of ranks.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, offset, ...tokens] = line.split(' ');
    tokens.forEach((b64, i) => (table[Number(offset) + i] = new Uint8Array(Buffer.from(b64, 'base64'))));
  }
  for (const [text, id] of Object.entries(ranks.special_tokens)) table[id] = new TextEncoder().encode(text);
  r50kBytes = table;
  return table;
}

/**
 * A whole-word tokenizer for zoo models with small vocabularies. Text is split on whitespace;
 * a word not in the vocabulary is split further: vocabulary entries that mix letters with
 * symbols ('<bos>') are found anywhere, letter/digit runs must be whole vocabulary words, and
 * symbol runs are read greedily, longest vocabulary entry first ('"""x):' reads as '"""' 'x'
 * ')' ':'). Letters are never split, so a typo is an error, not two unrelated words.
 * decode joins tokens with single spaces.
 */
export class WordTokenizer implements Tokenizer {
  readonly kind = 'word';
  readonly vocabSize: number;
  private readonly ids = new Map<string, number>();
  private readonly mixed: RegExp | undefined;
  private readonly longestSymbolRun: number;

  constructor(private readonly vocab: readonly string[]) {
    if (vocab.length === 0) throw new CircuitryError('word tokenizer: the vocabulary is empty');
    vocab.forEach((w, i) => {
      if (typeof w !== 'string' || w === '' || /\s/u.test(w)) {
        throw new CircuitryError(`word tokenizer: vocabulary entry ${i} (${JSON.stringify(w)}) must be a non-empty string without whitespace`);
      }
      if (this.ids.has(w)) throw new CircuitryError(`word tokenizer: '${w}' appears twice in the vocabulary (ids ${this.ids.get(w)} and ${i})`);
      this.ids.set(w, i);
    });
    this.vocabSize = vocab.length;
    const mixed = vocab.filter((w) => /[\p{L}\p{N}_]/u.test(w) && /[^\p{L}\p{N}_]/u.test(w));
    this.mixed = mixed.length
      ? new RegExp(`(${[...mixed].sort((a, b) => b.length - a.length).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`, 'u')
      : undefined;
    this.longestSymbolRun = Math.max(1, ...vocab.filter((w) => !/[\p{L}\p{N}_]/u.test(w)).map((w) => w.length));
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const word of text.split(/\s+/u)) {
      if (word === '') continue;
      const whole = this.ids.get(word);
      if (whole !== undefined) {
        out.push(whole);
        continue;
      }
      // split() with a capture group keeps the mixed entries at the odd indices
      const parts = this.mixed ? word.split(this.mixed) : [word];
      parts.forEach((part, i) => {
        if (i % 2 === 1) out.push(this.ids.get(part)!);
        else for (const run of part.match(/[\p{L}\p{N}_]+|[^\p{L}\p{N}_]+/gu) ?? []) this.encodeRun(run, word, out);
      });
    }
    return out;
  }

  /** A letter/digit run is one word; a symbol run is split greedily into vocabulary symbols. */
  private encodeRun(run: string, word: string, out: number[]): void {
    const id = this.ids.get(run);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    if (/[\p{L}\p{N}_]/u.test(run)) throw this.unknown(run, word);
    const chars = [...run];
    for (let i = 0; i < chars.length; ) {
      let len = Math.min(this.longestSymbolRun, chars.length - i);
      while (len > 0 && !this.ids.has(chars.slice(i, i + len).join(''))) len--;
      if (len === 0) throw this.unknown(chars[i], word);
      out.push(this.ids.get(chars.slice(i, i + len).join(''))!);
      i += len;
    }
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => this.tokenString(id)).join(' ');
  }

  tokenString(id: number): string {
    checkId(id, this.vocabSize, `model's vocabulary of ${this.vocabSize} words`);
    return this.vocab[id];
  }

  private unknown(piece: string, word: string): CircuitryError {
    const n = this.vocabSize;
    const where = piece === word ? '' : ` (in '${word}')`;
    const listing = n <= 40 ? `: ${this.vocab.join(' ')}` : '';
    return new CircuitryError(`unknown word '${piece}'${where}: the model's vocabulary has ${n} words${listing}`);
  }
}

/** For models without a tokenizer: text cannot be encoded, ids display as [17]. */
export class IdsTokenizer implements Tokenizer {
  readonly kind = 'ids';

  constructor(
    readonly vocabSize: number,
    private readonly where = 'this model',
  ) {}

  encode(text: string): never {
    throw new CircuitryError(
      `${this.where} has no tokenizer (no tokenizer.json, and a vocabulary of ${this.vocabSize} ids is not GPT-2's ${GPT2_VOCAB_SIZE}), so the text ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)} cannot be encoded: pass token ids instead (e.g. --tokens 1,2,3, or int arrays in a dataset)`,
    );
  }
  decode(ids: readonly number[]): string {
    return ids.map((id) => this.tokenString(id)).join('');
  }
  tokenString(id: number): string {
    checkId(id, this.vocabSize, `model's vocabulary`);
    return `[${id}]`;
  }
}

/**
 * The tokenizer for a model folder: its tokenizer.json if there is one, else GPT-2's r50k
 * encoding when the model has GPT-2's vocabulary size, else ids only.
 */
export function tokenizerForFolder(dir: string, vocabSize: number): Tokenizer {
  const path = join(dir, 'tokenizer.json');
  if (existsSync(path)) {
    const tok = BpeTokenizer.fromFile(path);
    if (tok.vocabSize > vocabSize) {
      throw new CircuitryError(`${path}: the tokenizer has ${tok.vocabSize} token ids but the model's vocabulary has ${vocabSize} (config.json vocab_size): they do not belong together`);
    }
    return tok;
  }
  if (vocabSize === GPT2_VOCAB_SIZE) return new R50kTokenizer();
  return new IdsTokenizer(vocabSize, `the model in ${dir}`);
}

/**
 * Parses `--tokens 1,2,3` (commas and/or spaces, optional surrounding brackets) into ids,
 * each checked against the vocabulary.
 */
export function parseTokenIds(text: string, vocabSize: number): number[] {
  const range = `expected integer ids in 0..${vocabSize - 1}`;
  const body = text.trim().replace(/^\[(.*)\]$/su, '$1');
  const parts = body.split(/[\s,]+/u).filter((p) => p !== '');
  if (parts.length === 0) throw new CircuitryError(`token ids: got no ids in ${JSON.stringify(text)} (${range}, e.g. 464,3290)`);
  return parts.map((p) => {
    if (!/^[+-]?\d+$/u.test(p)) throw new CircuitryError(`token id '${p}' is not an integer (${range})`);
    const id = Number(p);
    if (id < 0 || id >= vocabSize) throw new CircuitryError(`token id ${p} is out of range (${range})`);
    return id;
  });
}
