import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import { CircuitryError } from '../errors.js';

/** Text <-> token ids for one model. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** 'bpe' (tokenizer.json), 'r50k' (GPT-2 built in), 'word' (zoo vocabularies) or 'ids' (none) */
  readonly kind: string;
  /**
   * The special tokens the model's tokenizer puts before a prompt (its BOS rule: [BOS] for
   * Llama-3 and Gemma, [] for GPT-2, NeoX and Qwen2).
   */
  readonly prefix: readonly number[];
  /** The text's own tokens, without special tokens (prompt pieces, answers). */
  encode(text: string): number[];
  /** A whole prompt as the model's tokenizer gives it (add_special_tokens): prefix + encode(text). */
  encodePrompt(text: string): number[];
  /** Text of the ids, special tokens included unless skipSpecial. */
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  /** One token for display: the text it stands for ('Ġthe' and '▁the' show as ' the'). */
  tokenString(id: number): string;
}

/** The vocabulary size of GPT-2's r50k encoding (50,000 merges + 256 bytes + <|endoftext|>). */
export const GPT2_VOCAB_SIZE = 50257;

function checkId(id: number, vocabSize: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new CircuitryError(`token id ${id} is out of range for the ${what} (ids 0..${vocabSize - 1})`);
  }
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Shows bytes as text when they are valid UTF-8 on their own, else with \xNN escapes. */
export function displayBytes(bytes: Uint8Array): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    // a piece of a multi-byte character: printable ASCII as itself, other bytes escaped
    return [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
  }
}

let byteOfChar: Map<string, number> | undefined;
/** The byte-level alphabet: printable Latin-1 bytes stand for themselves, the others for U+0100 on. */
function byteLevelChars(): Map<string, number> {
  if (byteOfChar) return byteOfChar;
  const map = new Map<string, number>();
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  for (let b = 0; b < 256; b++) map.set(String.fromCharCode(printable(b) ? b : next++), b);
  byteOfChar = map;
  return map;
}

const TOKENIZER_MODELS = ['BPE'];

/** Whether a tokenizer.json component (or one nested in a Sequence) has this type. */
function hasComponent(part: unknown, type: string): boolean {
  if (typeof part !== 'object' || part === null) return false;
  if ((part as { type?: unknown }).type === type) return true;
  return Object.values(part).some((v) => Array.isArray(v) && v.some((x) => hasComponent(x, type)));
}

/**
 * A HuggingFace tokenizer.json run by @huggingface/tokenizers: byte-level BPE (GPT-2, NeoX,
 * Llama-3, Qwen2) and SentencePiece-style BPE with byte fallback (Llama-2, Gemma), with the
 * special tokens its post-processor adds (the family's BOS rule). WordPiece and Unigram models
 * are refused.
 */
export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe';
  readonly vocabSize: number;
  readonly prefix: readonly number[];
  private readonly tok: HfTokenizer;
  private readonly byteLevel: boolean;
  private readonly added: Map<number, string>;

  constructor(tokenizerJson: unknown, file = 'tokenizer.json', tokenizerConfig: unknown = {}) {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || Array.isArray(tokenizerJson)) throw new CircuitryError(`${file}: expected a JSON object`);
    const json = tokenizerJson as Record<string, unknown>;
    const model = json.model as Record<string, unknown> | undefined;
    const type = model && typeof model === 'object' ? model.type : undefined;
    if (typeof type !== 'string' || !TOKENIZER_MODELS.includes(type)) {
      throw new CircuitryError(
        `${file}: model.type is ${JSON.stringify(type ?? null)}; circuitry runs BPE tokenizers (model.type "BPE": byte-level, or SentencePiece-style with byte fallback), not WordPiece or Unigram`,
      );
    }
    try {
      // absent components mean none, as the Rust library reads them
      const full = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json };
      this.tok = new HfTokenizer(full, (tokenizerConfig ?? {}) as object);
    } catch (e) {
      throw new CircuitryError(`${file}: the tokenizer cannot be built (${(e as Error).message})`);
    }
    this.byteLevel = hasComponent(json.decoder, 'ByteLevel') || hasComponent(json.pre_tokenizer, 'ByteLevel');
    this.added = new Map([...this.tok.get_added_tokens_decoder()].map(([id, t]) => [id, t.content]));
    let max = -1;
    for (const id of this.tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    this.prefix = this.tok.encode('', { add_special_tokens: true }).ids;
  }

  /** Reads tokenizer.json, and tokenizer_config.json beside it when there is one. */
  static fromFile(path: string): BpeTokenizer {
    const read = (p: string): unknown => {
      try {
        return JSON.parse(readFileSync(p, 'utf8'));
      } catch (e) {
        throw new CircuitryError(`${p}: cannot read the tokenizer (${(e as Error).message})`);
      }
    };
    const configPath = join(dirname(path), 'tokenizer_config.json');
    return new BpeTokenizer(read(path), path, existsSync(configPath) ? read(configPath) : {});
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  encodePrompt(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: true }).ids;
  }

  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    for (const id of ids) checkId(id, this.vocabSize, 'tokenizer');
    if (ids.length === 0) return '';
    return this.tok.decode([...ids], { skip_special_tokens: opts.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  tokenString(id: number): string {
    checkId(id, this.vocabSize, 'tokenizer');
    const added = this.added.get(id);
    if (added !== undefined) return added;
    const token = this.tok.id_to_token(id);
    if (token === undefined) return `[${id}]`;
    if (this.byteLevel) {
      const chars = byteLevelChars();
      const bytes = [...token].map((c) => chars.get(c));
      // a token outside the byte alphabet (hand-made vocabularies) shows as its own text
      return bytes.every((b) => b !== undefined) ? displayBytes(Uint8Array.from(bytes as number[])) : token;
    }
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
    if (byte) return displayBytes(Uint8Array.of(parseInt(byte[1], 16)));
    return token.replace(/\u2581/g, ' ');
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
  readonly prefix: readonly number[] = [];
  private readonly enc: Tiktoken;

  constructor() {
    r50kEncoder ??= new Tiktoken(loadR50kRanks());
    this.enc = r50kEncoder;
  }

  encode(text: string): number[] {
    return this.enc.encode(text, 'all');
  }
  encodePrompt(text: string): number[] {
    return this.encode(text);
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
  readonly prefix: readonly number[] = [];
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

  encodePrompt(text: string): number[] {
    return this.encode(text);
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
  readonly prefix: readonly number[] = [];

  constructor(
    readonly vocabSize: number,
    private readonly where = 'this model',
  ) {}

  encode(text: string): never {
    throw new CircuitryError(
      `${this.where} has no tokenizer (no tokenizer.json, and a vocabulary of ${this.vocabSize} ids is not GPT-2's ${GPT2_VOCAB_SIZE}), so the text ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)} cannot be encoded: pass token ids instead (e.g. --tokens 1,2,3, or int arrays in a dataset)`,
    );
  }
  encodePrompt(text: string): never {
    return this.encode(text);
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
