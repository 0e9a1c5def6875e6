import { CircuitryError } from '../errors.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { ZOO_WORDS } from '../zoo/vocab.js';

/**
 * Built-in word lists. Each generator keeps, from a list, the words the tokenizer at hand
 * encodes as exactly one token (in the form the template uses them: " Mary" mid-sentence), so
 * the same defaults serve GPT-2's BPE (most of these words are single GPT-2 tokens) and the zoo's
 * word vocabulary (the zoo words come first; the rest are unknown words there and drop out).
 */
const unique = (...lists: readonly (readonly string[])[]): readonly string[] => Object.freeze([...new Set(lists.flat())]);

export const CANDIDATE_NAMES = unique(ZOO_WORDS.names, [
  'Michael', 'David', 'Robert', 'Thomas', 'Richard', 'Daniel', 'Paul', 'Andrew', 'Kevin', 'Brian',
  'George', 'Edward', 'Peter', 'Steve', 'Eric', 'Adam', 'Ryan', 'Jason', 'Scott', 'Frank',
  'Henry', 'Jacob', 'Kelly', 'Laura', 'Linda', 'Helen', 'Jessica', 'Rachel', 'Grace', 'Lucy',
  'Claire', 'Victoria', 'Jennifer', 'Sophie', 'Molly', 'Nancy', 'Patrick', 'Charlie', 'Alex', 'Carl',
]);

export const CANDIDATE_PLACES = unique(ZOO_WORDS.places, [
  'church', 'library', 'market', 'museum', 'theater', 'airport', 'hotel', 'bank', 'farm', 'river',
  'lake', 'forest', 'kitchen', 'bar', 'gym', 'zoo', 'mall', 'cafe', 'court', 'club',
]);

/** Consonant-initial, so "a [OBJECT]" reads right. */
export const CANDIDATE_OBJECTS = unique(ZOO_WORDS.objects, [
  'basketball', 'kiss', 'gift', 'hat', 'cake', 'pen', 'phone', 'bag', 'card', 'box',
  'watch', 'coin', 'key', 'map', 'towel', 'rose', 'flower', 'camera', 'guitar', 'ticket',
]);

export const CANDIDATE_EVENTS = unique(ZOO_WORDS.events, [
  'truce', 'voyage', 'expedition', 'project', 'crisis', 'trial', 'treaty', 'boom', 'dynasty', 'pilgrimage',
  'occupation', 'conflict', 'blockade', 'campaign', 'rebellion', 'revolution', 'era', 'tour',
]);

export const CANDIDATE_PARAMS = unique(ZOO_WORDS.params, [
  'load', 'files', 'last', 'file', 'item', 'index', 'type', 'line', 'node', 'page',
  'port', 'state', 'shape', 'source', 'target', 'order', 'limit', 'token', 'field', 'group',
]);

export const CANDIDATE_FUNCTIONS = unique(ZOO_WORDS.functions, [
  'load', 'read', 'write', 'start', 'stop', 'open', 'close', 'update', 'create', 'build',
  'parse', 'send', 'fetch', 'draw', 'sort',
]);

/** Words for docstring descriptions ("oil column piece"): any plain nouns and adjectives. */
export const CANDIDATE_DESCRIPTION_WORDS = unique(ZOO_WORDS.places, ZOO_WORDS.objects, [
  'oil', 'column', 'piece', 'crime', 'population', 'unit', 'dark', 'green', 'river', 'paper',
  'light', 'stone', 'glass', 'wind', 'cold', 'small', 'round', 'metal', 'water', 'field',
]);

/** Plain English words for induction sequences on tokenizers without the zoo's abstract tokens. */
export const CANDIDATE_SEQUENCE_WORDS = unique([
  'apple', 'river', 'stone', 'cloud', 'table', 'horse', 'green', 'music', 'paper', 'window',
  'garden', 'summer', 'winter', 'silver', 'forest', 'bridge', 'castle', 'doctor', 'island', 'market',
  'mirror', 'rabbit', 'rocket', 'shadow', 'engine', 'planet', 'pocket', 'tiger', 'violin', 'wheel',
  'yellow', 'bottle', 'candle', 'dragon', 'feather', 'hammer', 'jungle', 'ladder', 'lemon', 'monkey',
  'needle', 'orange', 'parrot', 'pepper', 'rubber', 'saddle', 'spider', 'tunnel', 'velvet', 'wagon',
]);

/** The one token `text` encodes to, or undefined (several tokens, none, or an encoding error). */
export function singleToken(tokenizer: Tokenizer, text: string): number | undefined {
  try {
    const ids = tokenizer.encode(text);
    return ids.length === 1 ? ids[0] : undefined;
  } catch {
    return undefined;
  }
}

/** Why `text` is not one token: `' Xavier' (2 tokens: ' X' 'avier')`, or the encoder's error. */
export function tokenProblem(tokenizer: Tokenizer, text: string): string {
  let ids: number[];
  try {
    ids = tokenizer.encode(text);
  } catch (e) {
    return `${JSON.stringify(text)} (${(e as Error).message})`;
  }
  if (ids.length === 0) return `${JSON.stringify(text)} (no tokens)`;
  return `${JSON.stringify(text)} (${ids.length} tokens: ${ids.map((i) => JSON.stringify(tokenizer.tokenString(i))).join(' ')})`;
}

/** How a word is used in a template: after a space (" Mary"), glued to what precedes ("32"), or both. */
export type WordForm = 'spaced' | 'bare' | 'both';

function formsOf(word: string, form: WordForm): string[] {
  return form === 'spaced' ? [` ${word}`] : form === 'bare' ? [word] : [word, ` ${word}`];
}

export interface WordListSpec {
  /** The option that overrides the list, e.g. 'names'. */
  readonly option: string;
  /** What the words are, plural, for messages ("names"). */
  readonly what: string;
  /** The user's list, if given: every word must then be one token. */
  readonly given?: readonly string[];
  /** The built-in candidates, filtered to single tokens when `given` is absent. */
  readonly candidates: readonly string[];
  readonly form: WordForm;
  /** The fewest words the generator can work with. */
  readonly need: number;
}

/**
 * The words a generator may use: the user's list (each checked to be one token, else an error
 * listing every offender) or the built-in candidates that are one token for this tokenizer.
 */
export function chooseWords(task: string, tokenizer: Tokenizer, spec: WordListSpec): string[] {
  const ok = (w: string): boolean => formsOf(w, spec.form).every((t) => singleToken(tokenizer, t) !== undefined);
  if (spec.given) {
    const bad = spec.given.filter((w) => !ok(w));
    if (bad.length > 0) {
      const detail = bad.flatMap((w) => formsOf(w, spec.form).filter((t) => singleToken(tokenizer, t) === undefined).map((t) => tokenProblem(tokenizer, t)));
      throw new CircuitryError(
        `${task}: option '${spec.option}': ${bad.length} of the ${spec.what} ${bad.length === 1 ? 'is' : 'are'} not one token for the ${tokenizer.kind} tokenizer: ${detail.join(', ')}; every word must be a single token${spec.form === 'bare' ? '' : ' with its leading space'}`,
      );
    }
    if (spec.given.length < spec.need) {
      throw new CircuitryError(`${task}: option '${spec.option}' has ${spec.given.length} ${spec.what}; at least ${spec.need} are needed`);
    }
    return [...spec.given];
  }
  const words = spec.candidates.filter(ok);
  if (words.length < spec.need) {
    const some = words.length > 0 ? ` (${words.join(', ')})` : '';
    const missing = spec.candidates.filter((w) => !ok(w));
    const shown = missing.length > 12 ? `${missing.slice(0, 12).join(', ')}, … (${missing.length - 12} more)` : missing.join(', ');
    throw new CircuitryError(
      `${task}: only ${words.length} of the ${spec.candidates.length} built-in ${spec.what} are single tokens for the ${tokenizer.kind} tokenizer${some}; not single tokens: ${shown}; at least ${spec.need} are needed: pass option '${spec.option}' with words this tokenizer encodes as one token each`,
    );
  }
  return words;
}
