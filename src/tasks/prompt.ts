import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { tokenProblem } from './words.js';

/**
 * Prompt templates. A template is text with {SLOT}s; a slot right after a space takes that
 * space (" Mary", as GPT-2 tokenizes a word mid-sentence), a slot glued to what precedes does
 * not ("17{YY}" gives " 17" then "32"). A prompt's ids are the concatenation of each literal
 * part's and each slot word's encoding, and every generated prompt is checked to re-tokenize to
 * exactly those ids from its own text (encode(decode(ids)) = ids), so ids and text never disagree,
 * whichever the tokenizer.
 */
export type TemplatePiece = { readonly literal: string } | { readonly slot: string; readonly space: boolean };

export interface Template {
  /** The text as written, for messages and provenance. */
  readonly text: string;
  readonly pieces: readonly TemplatePiece[];
}

/** Splits a template into literal parts and slots; slot names must be among `slots`. */
export function parseTemplate(text: string, slots: readonly string[], where: string): Template {
  const pieces: TemplatePiece[] = [];
  const re = /\{([A-Za-z0-9_]+)\}/gu;
  let at = 0;
  for (const m of text.matchAll(re)) {
    const name = m[1];
    if (!slots.includes(name)) {
      throw new CircuitryError(`${where}: unknown slot {${name}} in template ${JSON.stringify(text)}; the slots are ${slots.map((s) => `{${s}}`).join(' ')}`);
    }
    let lit = text.slice(at, m.index);
    const space = lit.endsWith(' ');
    if (space) lit = lit.slice(0, -1);
    if (lit !== '') pieces.push({ literal: lit });
    pieces.push({ slot: name, space });
    at = m.index + m[0].length;
  }
  if (at < text.length) pieces.push({ literal: text.slice(at) });
  const stray = text.replace(re, '').match(/[{}]/u);
  if (stray) throw new CircuitryError(`${where}: template ${JSON.stringify(text)} has a stray '${stray[0]}' (slots are written {NAME})`);
  return { text, pieces };
}

/** Slot names that occur in a template. */
export function slotsOf(t: Template): Set<string> {
  return new Set(t.pieces.flatMap((p) => ('slot' in p ? [p.slot] : [])));
}

/**
 * Encodes templates with one tokenizer, caching every literal and word. Literal parts may be
 * any number of tokens (constant per template); slot words must be exactly one token, which the
 * generators guarantee by choosing their word lists with `chooseWords` first.
 */
export class PromptBuilder {
  private readonly literals = new Map<string, number[]>();
  private readonly words = new Map<string, number>();

  constructor(
    readonly task: string,
    readonly tokenizer: Tokenizer,
  ) {}

  /** The ids of a literal part; an error naming the template when the tokenizer cannot encode it. */
  literal(text: string, template: Template): number[] {
    let ids = this.literals.get(text);
    if (ids === undefined) {
      try {
        ids = this.tokenizer.encode(text);
      } catch (e) {
        throw new CircuitryError(
          `${this.task}: the ${this.tokenizer.kind} tokenizer cannot encode the template ${JSON.stringify(template.text)}: ${(e as Error).message}`,
        );
      }
      this.literals.set(text, ids);
    }
    return ids;
  }

  /** The one token of a slot word in the form the template uses. */
  word(word: string, space: boolean): number {
    const text = space ? ` ${word}` : word;
    let id = this.words.get(text);
    if (id === undefined) {
      const ids = (() => {
        try {
          return this.tokenizer.encode(text);
        } catch {
          return [];
        }
      })();
      if (ids.length !== 1) {
        throw new CircuitryError(`${this.task}: slot word ${tokenProblem(this.tokenizer, text)} is not one token for the ${this.tokenizer.kind} tokenizer`);
      }
      id = ids[0];
      this.words.set(text, id);
    }
    return id;
  }

  /** The token length of every prompt from this template (literal tokens plus one per slot). */
  length(t: Template): number {
    return t.pieces.reduce((s, p) => s + ('slot' in p ? 1 : this.literal(p.literal, t).length), 0);
  }

  /** The ids of a template with its slots filled; checks the text re-tokenizes to the same ids. */
  render(t: Template, values: Readonly<Record<string, string>>): number[] {
    const ids: number[] = [];
    for (const p of t.pieces) {
      if ('slot' in p) {
        const w = values[p.slot];
        if (w === undefined) throw new Error(`${this.task}: no value for slot {${p.slot}} of ${JSON.stringify(t.text)}`);
        ids.push(this.word(w, p.space));
      } else {
        ids.push(...this.literal(p.literal, t));
      }
    }
    this.checkRoundTrip(ids, t.text);
    return ids;
  }

  /** Throws unless encode(decode(ids)) gives back `ids`: the prompt's text means exactly its ids. */
  checkRoundTrip(ids: readonly number[], what: string): void {
    const text = this.tokenizer.decode(ids);
    let again: number[];
    try {
      again = this.tokenizer.encode(text);
    } catch (e) {
      throw new CircuitryError(`${this.task}: the prompt ${JSON.stringify(text)} (from ${JSON.stringify(what)}) does not re-encode: ${(e as Error).message}`);
    }
    if (again.length !== ids.length || again.some((id, i) => id !== ids[i])) {
      const show = (xs: readonly number[]): string => xs.map((i) => JSON.stringify(this.tokenizer.tokenString(i))).join(' ');
      throw new CircuitryError(
        `${this.task}: the prompt ${JSON.stringify(text)} (from ${JSON.stringify(what)}) re-tokenizes differently with the ${this.tokenizer.kind} tokenizer: built as ${show(ids)}, encodes as ${show(again)}; choose words that do not merge with their neighbours`,
      );
    }
  }
}

/** Keeps the templates of the most common token length (ties: the earlier length in list order). */
export function sameLengthTemplates<T>(items: readonly T[], lengthOf: (t: T) => number): { kept: T[]; length: number } {
  const groups = new Map<number, T[]>();
  for (const t of items) {
    const len = lengthOf(t);
    groups.set(len, [...(groups.get(len) ?? []), t]);
  }
  let best: [number, T[]] | undefined;
  for (const g of groups) if (!best || g[1].length > best[1].length) best = g;
  if (!best) throw new Error('sameLengthTemplates: no templates');
  return { kept: best[1], length: best[0] };
}
