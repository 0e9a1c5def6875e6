import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CircuitryError } from '../../errors.js';
import { registerZooModel, type ZooModel } from '../index.js';

/**
 * The zoo's trained model: a small GPT-2-style transformer that circuitry trains itself
 * (`npm run train:zoo`, scripts/train-zoo.ts) on small-vocabulary IOI, greater-than and induction.
 * Its circuits are learned, not planted. The folder holds config.json, model.safetensors,
 * vocab.json (the word vocabulary it was trained on) and MODEL_CARD.md.
 */
export const MINI_GPT2_DIR = fileURLToPath(new URL('./mini-gpt2/', import.meta.url));

function readVocab(dir: string): string[] {
  const path = `${dir}vocab.json`;
  if (!existsSync(path)) throw new CircuitryError(`${path} is missing: the trained zoo model ships with the repository (re-create it with npm run train:zoo)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CircuitryError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((w) => typeof w === 'string')) throw new CircuitryError(`${path}: expected a non-empty JSON list of words`);
  return raw;
}

let vocab: readonly string[] | undefined;

export const miniGpt2: ZooModel = {
  name: 'mini-gpt2',
  describe: 'trained 3-layer, 4-head GPT-2-style model (d_model 64) for ioi, greater-than and induction: learned circuits',
  kind: 'trained',
  // read on first use, so importing the zoo costs nothing
  get vocab(): readonly string[] {
    vocab ??= Object.freeze(readVocab(MINI_GPT2_DIR));
    return vocab;
  },
  tasks: ['ioi', 'greater-than', 'induction'],
  dir: MINI_GPT2_DIR,
};

registerZooModel(miniGpt2);
