import { createRequire } from 'node:module';

/**
 * Test-side facts about GPT-2 byte-level BPE, written independently of src/model/bpe.ts so the
 * tests check the implementation rather than repeat it.
 */

/** GPT-2's 256 base tokens in id order: printable Latin-1 bytes, then the rest from U+0100. */
export function gpt2ByteChars(): { bytes: number[]; chars: string[] } {
  const bytes: number[] = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = bytes.map((b) => String.fromCharCode(b));
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(String.fromCharCode(256 + n++));
    }
  }
  return { bytes, chars };
}

/** Byte-level spelling of a string ('Ġ' for space, 'Ċ' for newline, ...). */
export function byteLevel(text: string): string {
  const { bytes, chars } = gpt2ByteChars();
  const map = new Map(bytes.map((b, i) => [b, chars[i]]));
  return [...Buffer.from(text, 'utf8')].map((b) => map.get(b)!).join('');
}

/**
 * A small tokenizer.json: the 256 byte tokens with GPT-2's ids (so ' ' is 220, '\n' 198),
 * then merges chosen so that rank order matters: "h e" outranks "Ġ h", so " hello" becomes
 * Ġ + hello and not Ġh + ello.
 */
export function handTokenizerJson(opts: { pairs?: boolean; addPrefixSpace?: boolean } = {}): Record<string, unknown> {
  const { chars } = gpt2ByteChars();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const merges: [string, string][] = [
    ['Ġ', 't'], //  rank 0 -> Ġt    256
    ['h', 'e'], //  rank 1 -> he    257
    ['Ġt', 'he'], // rank 2 -> Ġthe  258
    ['l', 'l'], //  rank 3 -> ll    259
    ['e', 'll'], // rank 4 -> ell   260 (never used: 'h e' merges first)
    ['he', 'll'], // rank 5 -> hell  261
    ['hell', 'o'], // rank 6 -> hello 262
    ['Ġ', 'h'], //  rank 7 -> Ġh    263
    ['Ġh', 'ell'], // rank 8 -> Ġhell 264
  ];
  merges.forEach(([a, b], i) => (vocab[a + b] = 256 + i));
  return {
    version: '1.0',
    added_tokens: [
      { id: 265, content: '<|endoftext|>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
      { id: 266, content: '<pad>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: opts.addPrefixSpace ?? false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: { ...vocab, '<|endoftext|>': 265 },
      merges: opts.pairs ? merges : merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

let gpt2Json: Record<string, unknown> | undefined;

/**
 * GPT-2's tokenizer.json rebuilt from the r50k rank table bundled with js-tiktoken: a token of
 * rank r is the merge of the two parts that BPE with ranks < r leaves it in. Lets the BPE
 * implementation be compared with tiktoken over the full 50,257-token vocabulary, offline.
 */
export function gpt2TokenizerJsonFromR50k(): Record<string, unknown> {
  if (gpt2Json) return gpt2Json;
  const ranks = createRequire(import.meta.url)('js-tiktoken/ranks/r50k_base') as { bpe_ranks: string };
  const tokens: Buffer[] = [];
  for (const line of ranks.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, offset, ...b64s] = line.split(' ');
    b64s.forEach((b64, i) => (tokens[Number(offset) + i] = Buffer.from(b64, 'base64')));
  }
  const rankOf = new Map(tokens.map((t, r) => [t.toString('latin1'), r]));
  const { bytes, chars } = gpt2ByteChars();
  const charOf = new Map(bytes.map((b, i) => [b, chars[i]]));
  const spell = (t: Buffer): string => [...t].map((b) => charOf.get(b)!).join('');
  const merges: string[] = [];
  for (let r = 256; r < tokens.length; r++) {
    let parts = [...tokens[r]].map((b) => String.fromCharCode(b));
    while (parts.length > 2) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i + 1 < parts.length; i++) {
        const x = rankOf.get(parts[i] + parts[i + 1]);
        if (x !== undefined && x < r && x < best) [best, at] = [x, i];
      }
      if (at < 0) throw new Error(`r50k token ${r} cannot be split into a merge`);
      parts = [...parts.slice(0, at), parts[at] + parts[at + 1], ...parts.slice(at + 2)];
    }
    merges.push(parts.map((p) => spell(Buffer.from(p, 'latin1'))).join(' '));
  }
  const vocab: Record<string, number> = {};
  tokens.forEach((t, r) => (vocab[spell(t)] = r));
  vocab['<|endoftext|>'] = 50256;
  gpt2Json = {
    added_tokens: [{ id: 50256, content: '<|endoftext|>', special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges },
  };
  return gpt2Json;
}
