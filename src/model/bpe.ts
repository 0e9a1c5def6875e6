import { CircuitryError } from '../errors.js';

/**
 * Byte-level BPE as in GPT-2 and HuggingFace `tokenizers`: text is split on added tokens, then
 * by the GPT-2 regex into pre-tokens; each pre-token's UTF-8 bytes are mapped to printable
 * characters (byte_to_unicode) and merged pairwise by rank until no ranked pair remains.
 */

/** The GPT-2 pre-tokenizer: contractions, letter runs, digit runs, other runs, whitespace. */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's reversible byte -> character table: printable Latin-1 bytes map to themselves, the
 * other 68 bytes (controls, space, ...) to U+0100 onwards, so no token contains whitespace
 * (a space becomes 'Ġ', a newline 'Ċ').
 */
function buildByteTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    byteToChar[b] = String.fromCodePoint(printable ? b : 256 + next++);
  }
  const charToByte = new Map(byteToChar.map((c, b) => [c, b]));
  return { byteToChar, charToByte };
}
const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildByteTables();

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Lenient = new TextDecoder('utf-8');

/** The bytes a byte-level token string stands for, or undefined if it has a non-table char. */
export function tokenBytes(token: string): Uint8Array | undefined {
  const out: number[] = [];
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return undefined;
    out.push(b);
  }
  return Uint8Array.from(out);
}

/** Shows bytes as text when they are valid UTF-8 on their own, else with \xNN escapes. */
export function displayBytes(bytes: Uint8Array): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    // a piece of a multi-byte character: printable ASCII as itself, other bytes escaped
    return [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
  }
}

export interface AddedToken {
  readonly id: number;
  readonly content: string;
}

export interface BpeSpec {
  /** token string (byte-level characters) -> id */
  readonly vocab: ReadonlyMap<string, number>;
  /** merges in rank order, each a pair of token strings */
  readonly merges: readonly (readonly [string, string])[];
  readonly addedTokens: readonly AddedToken[];
  readonly addPrefixSpace: boolean;
  /** where the spec came from, for error messages */
  readonly source: string;
}

const CACHE_LIMIT = 50_000;

export class ByteLevelBpe {
  readonly vocabSize: number;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly idToToken = new Map<number, string>();
  private readonly ranks = new Map<string, number>();
  private readonly added = new Map<string, number>();
  private readonly addedById = new Map<number, string>();
  private readonly addedPattern: RegExp | undefined;
  private readonly cache = new Map<string, number[]>();

  constructor(private readonly spec: BpeSpec) {
    this.vocab = spec.vocab;
    let maxId = -1;
    for (const [tok, id] of spec.vocab) {
      this.idToToken.set(id, tok);
      maxId = Math.max(maxId, id);
    }
    // a NUL cannot occur in a byte-level token (byte 0 maps to 'Ā'), so it separates the pair
    spec.merges.forEach(([a, b], rank) => {
      const key = `${a}\u0000${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    for (const t of spec.addedTokens) {
      this.added.set(t.content, t.id);
      this.addedById.set(t.id, t.content);
      maxId = Math.max(maxId, t.id);
    }
    this.vocabSize = maxId + 1;
    if (this.added.size > 0) {
      // longest first, so '<|a|><|ab|>'-style overlaps match the longer token
      const alts = [...this.added.keys()].sort((x, y) => y.length - x.length).map(escapeRegExp);
      this.addedPattern = new RegExp(alts.join('|'), 'gu');
    }
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    let start = 0;
    if (this.addedPattern) {
      for (const m of text.matchAll(this.addedPattern)) {
        this.encodeOrdinary(text.slice(start, m.index), ids, start === 0);
        ids.push(this.added.get(m[0])!);
        start = m.index + m[0].length;
      }
    }
    this.encodeOrdinary(text.slice(start), ids, start === 0);
    return ids;
  }

  decode(ids: readonly number[]): string {
    let out = '';
    let pending: number[] = [];
    const flush = (): void => {
      if (pending.length) out += utf8Lenient.decode(Uint8Array.from(pending));
      pending = [];
    };
    for (const id of ids) {
      const added = this.addedById.get(id);
      if (added !== undefined) {
        flush();
        out += added;
        continue;
      }
      const bytes = this.bytesOf(id);
      for (const b of bytes) pending.push(b);
    }
    flush();
    return out;
  }

  tokenString(id: number): string {
    const added = this.addedById.get(id);
    return added ?? displayBytes(this.bytesOf(id));
  }

  private bytesOf(id: number): Uint8Array {
    const tok = this.idToToken.get(id);
    if (tok === undefined) {
      throw new CircuitryError(`token id ${id} is not in the tokenizer's vocabulary (${this.spec.source}, ids 0..${this.vocabSize - 1})`);
    }
    // a token outside the byte table (rare, hand-made vocabularies) decodes as its own text
    return tokenBytes(tok) ?? utf8.encode(tok);
  }

  /** Text with no added tokens in it: pre-tokenize, byte-map, merge. */
  private encodeOrdinary(text: string, ids: number[], atStart: boolean): void {
    if (text === '') return;
    if (this.spec.addPrefixSpace && atStart && !text.startsWith(' ')) text = ' ' + text;
    for (const m of text.matchAll(GPT2_PATTERN)) {
      const piece = m[0];
      let cached = this.cache.get(piece);
      if (!cached) {
        cached = this.bpe(piece);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(piece, cached);
      }
      for (const id of cached) ids.push(id);
    }
  }

  private bpe(piece: string): number[] {
    let symbols = [...utf8.encode(piece)].map((b) => BYTE_TO_CHAR[b]);
    while (symbols.length > 1) {
      let best = Infinity;
      let bestAt = -1;
      for (let i = 0; i < symbols.length - 1; i++) {
        const r = this.ranks.get(`${symbols[i]}\u0000${symbols[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      // merge every occurrence of the best pair, left to right
      const a = symbols[bestAt];
      const b = symbols[bestAt + 1];
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === a && symbols[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else {
          merged.push(symbols[i]);
        }
      }
      symbols = merged;
    }
    return symbols.map((s) => {
      const id = this.vocab.get(s);
      if (id === undefined) {
        throw new CircuitryError(
          `${this.spec.source}: the text piece ${JSON.stringify(piece)} needs token ${JSON.stringify(s)}, which is not in model.vocab (a byte-level vocabulary must contain all 256 byte tokens)`,
        );
      }
      return id;
    });
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True if a pre_tokenizer / decoder entry is ByteLevel (alone or the only step of a Sequence). */
function byteLevelStep(v: unknown): Record<string, unknown> | undefined {
  if (!isObject(v)) return undefined;
  if (v.type === 'ByteLevel') return v;
  if (v.type === 'Sequence') {
    const steps = Array.isArray(v.pretokenizers) ? v.pretokenizers : [];
    if (steps.length === 1) return byteLevelStep(steps[0]);
  }
  return undefined;
}

/**
 * Reads a HuggingFace `tokenizer.json` object into a BPE spec. Only byte-level BPE (GPT-2,
 * GPT-Neo, Pythia style) is accepted; anything else is an error naming the field.
 */
export function bpeSpecFromTokenizerJson(raw: unknown, file: string): BpeSpec {
  if (!isObject(raw)) throw new CircuitryError(`${file}: expected a JSON object`);
  const model = raw.model;
  if (!isObject(model)) throw new CircuitryError(`${file}: missing the 'model' object`);
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new CircuitryError(`${file}: model.type is ${JSON.stringify(model.type)}; circuitry reads byte-level BPE tokenizers (model.type "BPE")`);
  }
  // GPT-2's own file has "" for the two affixes
  if (model.byte_fallback === true || Boolean(model.continuing_subword_prefix) || Boolean(model.end_of_word_suffix)) {
    throw new CircuitryError(`${file}: model.byte_fallback / continuing_subword_prefix / end_of_word_suffix are not supported (expected a byte-level BPE like GPT-2's)`);
  }
  const pre = raw.pre_tokenizer ?? null;
  const preStep = byteLevelStep(pre);
  if (!preStep) {
    const type = isObject(pre) ? pre.type : pre;
    throw new CircuitryError(`${file}: pre_tokenizer ${JSON.stringify(type)} is not supported (expected "ByteLevel", as in GPT-2)`);
  }
  if (preStep.use_regex === false) {
    throw new CircuitryError(`${file}: pre_tokenizer.use_regex false is not supported (expected the GPT-2 regex)`);
  }
  const norm = raw.normalizer ?? null;
  if (norm !== null) {
    throw new CircuitryError(`${file}: normalizer ${JSON.stringify(isObject(norm) ? norm.type : norm)} is not supported (GPT-2 style tokenizers have none)`);
  }

  if (!isObject(model.vocab)) throw new CircuitryError(`${file}: model.vocab must be an object of token -> id`);
  const vocab = new Map<string, number>();
  const seen = new Map<number, string>();
  for (const [tok, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new CircuitryError(`${file}: model.vocab[${JSON.stringify(tok)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
    }
    const prev = seen.get(id);
    if (prev !== undefined) throw new CircuitryError(`${file}: model.vocab gives id ${id} to both ${JSON.stringify(prev)} and ${JSON.stringify(tok)}`);
    seen.set(id, tok);
    vocab.set(tok, id);
  }

  const rawMerges = model.merges ?? [];
  if (!Array.isArray(rawMerges)) throw new CircuitryError(`${file}: model.merges must be an array`);
  const merges = rawMerges.map((m, i): [string, string] => {
    // older files write "a b", newer ones ["a", "b"]
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new CircuitryError(`${file}: model.merges[${i}] must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
    }
    return [pair[0], pair[1]];
  });

  const addedTokens: AddedToken[] = [];
  const rawAdded = raw.added_tokens ?? [];
  if (!Array.isArray(rawAdded)) throw new CircuitryError(`${file}: added_tokens must be an array`);
  rawAdded.forEach((t, i) => {
    if (!isObject(t) || typeof t.content !== 'string' || t.content === '' || typeof t.id !== 'number' || !Number.isInteger(t.id) || t.id < 0) {
      throw new CircuitryError(`${file}: added_tokens[${i}] must have a non-empty string 'content' and an integer 'id'`);
    }
    const prev = seen.get(t.id);
    if (prev !== undefined && prev !== t.content) {
      throw new CircuitryError(`${file}: added_tokens[${i}] (${JSON.stringify(t.content)}) reuses id ${t.id} of model.vocab token ${JSON.stringify(prev)}`);
    }
    addedTokens.push({ id: t.id, content: t.content });
  });

  return { vocab, merges, addedTokens, addPrefixSpace: preStep.add_prefix_space === true, source: file };
}
