import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpointFolder } from '../../src/model/checkpoint.js';
import { modelFromTensors } from '../../src/model/arch/index.js';
import type { Transformer } from '../../src/model/transformer.js';
import type { PairData } from '../../src/patching/patcher.js';

/** A HuggingFace model folder of test/fixtures (any family), loaded as the CLI loads it. */
export function loadFamilyModel(dir: string): Transformer {
  const ckpt = readCheckpointFolder(dir);
  return modelFromTensors(ckpt.configRaw, ckpt.tensors, dir);
}

/** A fixture's dataset.jsonl of token ids: {clean, corrupted, answer, wrong} per line. */
export function loadFamilyData(dir: string): PairData {
  const rows = readFileSync(join(dir, 'dataset.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { clean: number[]; corrupted: number[]; answer: number; wrong: number });
  return {
    clean: rows.map((r) => r.clean),
    corrupted: rows.map((r) => r.corrupted),
    answers: rows.map((r) => [r.answer]),
    wrongs: rows.map((r) => [r.wrong]),
  };
}
