import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configFromHf } from '../../src/model/config.js';
import { readSafetensors } from '../../src/model/safetensors.js';
import { gpt2WeightsFromTensors } from '../../src/model/weights.js';
import { Transformer } from '../../src/model/transformer.js';
import type { PairData } from '../../src/patching/patcher.js';
import { TINY } from './fixtures.js';

/** The fixture model of test/fixtures/tiny-gpt2. */
export function loadTinyModel(): Transformer {
  const dir = join(TINY, 'model');
  const cfg = configFromHf(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  return new Transformer(cfg, gpt2WeightsFromTensors(cfg, readSafetensors(join(dir, 'model.safetensors')), dir));
}

/** The fixture's 16 clean/corrupted pairs. */
export function loadTinyData(): PairData {
  const rows = readFileSync(join(TINY, 'dataset.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return {
    clean: rows.map((r) => r.clean),
    corrupted: rows.map((r) => r.corrupted),
    answers: rows.map((r) => [r.answer]),
    wrongs: rows.map((r) => [r.wrong]),
  };
}
