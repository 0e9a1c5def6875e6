import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CircuitryError } from '../../errors.js';
import { registerZooModel, type ZooModel } from '../index.js';

/**
 * The zoo's trained models: small GPT-2-style and Llama-style transformers that circuitry trains
 * itself (`npm run train:zoo`, scripts/train-zoo.ts) on small-vocabulary IOI, greater-than and induction.
 * Their circuits are learned, not planted. Each folder holds config.json, model.safetensors,
 * vocab.json (the word vocabulary it was trained on) and MODEL_CARD.md.
 */
export const MINI_GPT2_DIR = fileURLToPath(new URL('./mini-gpt2/', import.meta.url));
/** The larger one (4 layers × 8 heads, 1,519 edges): big enough to time discovery methods on. */
export const MINI_GPT2_L4H8_DIR = fileURLToPath(new URL('./mini-gpt2-l4h8/', import.meta.url));
/** mini-gpt2's size in the modern block (a HF llama folder): the same tasks on a second architecture. */
export const MINI_LLAMA_DIR = fileURLToPath(new URL('./mini-llama/', import.meta.url));

function readVocab(dir: string): string[] {
  const path = `${dir}vocab.json`;
  if (!existsSync(path)) throw new CircuitryError(`${path} is missing: the trained zoo models ship with the repository (re-create them with npm run train:zoo)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CircuitryError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((w) => typeof w === 'string')) throw new CircuitryError(`${path}: expected a non-empty JSON list of words`);
  return raw;
}

function trainedModel(name: string, dir: string, describe: string): ZooModel {
  let vocab: readonly string[] | undefined;
  return {
    name,
    describe,
    kind: 'trained',
    // read on first use, so importing the zoo costs nothing
    get vocab(): readonly string[] {
      vocab ??= Object.freeze(readVocab(dir));
      return vocab;
    },
    tasks: ['ioi', 'greater-than', 'induction'],
    dir,
  };
}

export const miniGpt2 = trainedModel('mini-gpt2', MINI_GPT2_DIR, 'trained 3-layer, 4-head GPT-2-style model (d_model 64) for ioi, greater-than and induction: learned circuits');
export const miniGpt2L4H8 = trainedModel('mini-gpt2-l4h8', MINI_GPT2_L4H8_DIR, 'trained 4-layer, 8-head GPT-2-style model (d_model 64, 1,519 edges) for ioi, greater-than and induction: learned circuits');
export const miniLlama = trainedModel(
  'mini-llama',
  MINI_LLAMA_DIR,
  'trained 3-layer Llama-style model (rotary, RMSNorm, SwiGLU, 4 query heads sharing 2 key/value heads, d_model 64) for ioi, greater-than and induction: learned circuits',
);

registerZooModel(miniGpt2);
registerZooModel(miniGpt2L4H8);
registerZooModel(miniLlama);
