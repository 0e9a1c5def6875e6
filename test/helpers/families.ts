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

/**
 * A fixture model made one layer deeper: layer L is a perturbed copy of layer L − 1's tensors
 * (any family: keys are found by their `layers.{L-1}.` part), so that the engines meet more than
 * the fixtures' two layers (an earlier layer's heads under a later one, several post-norm layers).
 */
export function deeperFamilyModel(dir: string, seed = 1): Transformer {
  const ckpt = readCheckpointFolder(dir);
  const raw = { ...(ckpt.configRaw as Record<string, unknown>) };
  const L = raw.num_hidden_layers as number;
  raw.num_hidden_layers = L + 1;
  if (Array.isArray(raw.layer_types)) raw.layer_types = [...raw.layer_types, L % 2 === 0 ? 'sliding_attention' : 'full_attention'];
  const tensors = new Map(ckpt.tensors);
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  for (const [key, t] of ckpt.tensors) {
    const from = `layers.${L - 1}.`;
    if (!key.includes(from)) continue;
    const data = Float32Array.from(t.data, (v) => v * (0.7 + 0.6 * rand()));
    tensors.set(key.replace(from, `layers.${L}.`), { shape: t.shape, data });
  }
  return modelFromTensors(raw, tensors, `${dir} (deeper)`);
}
