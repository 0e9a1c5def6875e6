import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CircuitryError } from '../src/errors.js';
import { type HostTensor, writeSafetensors } from '../src/model/safetensors.js';
import { initBackend } from '../src/backend/index.js';
import { readCheckpointFolder } from '../src/model/checkpoint.js';
import { modelFromTensors } from '../src/model/arch/index.js';
import type { Transformer } from '../src/model/transformer.js';
import { blockHook, type HookName } from '../src/model/hooks.js';
import { FIXTURES, readJson, flat, maxAbsDiff } from './helpers/fixtures.js';

/**
 * The forward pass of every non-GPT-2 family against HuggingFace's float32 logits on the
 * fixture models (test/fixtures/<family>-shared): every clean prompt's last position, and every
 * position of the first prompt, to 1e-4.
 */
const FAMILIES = ['neox', 'llama', 'qwen2', 'gemma2'] as const;

interface Pair {
  clean: number[];
  corrupted: number[];
}

function load(family: string): { model: Transformer; clean: number[][]; hf: { last: number[]; first: number[] } } {
  const dir = join(FIXTURES, `${family}-shared`);
  const ckpt = readCheckpointFolder(join(dir, 'model'));
  const model = modelFromTensors(ckpt.configRaw, ckpt.tensors, ckpt.dir);
  const lines = readJsonLines(join(dir, 'dataset.jsonl'));
  const logits = readJson<{ last_position: { logits: unknown }; first_prompt: { logits: unknown } }>(dir, 'logits_hf.json');
  return { model, clean: lines.map((l) => l.clean), hf: { last: flat(logits.last_position.logits), first: flat(logits.first_prompt.logits) } };
}

function readJsonLines(path: string): Pair[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Pair);
}

beforeAll(async () => {
  await initBackend('wasm');
});

for (const family of FAMILIES) {
  describe(`${family} forward`, () => {
    let m: ReturnType<typeof load>;
    beforeAll(() => {
      m = load(family);
    });
    afterAll(() => m.model.dispose());

    it('last-position logits of all 16 clean prompts match HuggingFace to 1e-4', () => {
      const logits = m.model.forward(m.clean, { lastPositionOnly: true });
      expect(logits.shape).toEqual([16, 1, m.model.cfg.dVocab]);
      const diff = maxAbsDiff(logits.dataSync(), m.hf.last);
      if (process.env.SHOW_DIFFS) console.log(family, 'last', diff);
      expect(diff).toBeLessThan(1e-4);
      logits.dispose();
    });

    it("the first prompt's logits at every position match HuggingFace to 1e-4", () => {
      const logits = m.model.forward([m.clean[0]]);
      expect(maxAbsDiff(logits.dataSync(), m.hf.first)).toBeLessThan(1e-4);
      logits.dispose();
    });

    it('split q/k/v inputs with per-head results, and lastQueryOnly, give the same logits', () => {
      const a = m.model.forward(m.clean.slice(0, 4));
      const b = m.model.forward(m.clean.slice(0, 4), { splitQkvInput: true, useAttnResult: true });
      expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(2e-5);
      const c = m.model.forward(m.clean.slice(0, 4), { lastPositionOnly: true, lastQueryOnly: true });
      const p = m.clean[0].length;
      const V = m.model.cfg.dVocab;
      const lastA = tf.slice(a, [0, p - 1, 0], [4, 1, V]);
      expect(maxAbsDiff(lastA.dataSync(), c.dataSync())).toBeLessThan(2e-5);
      tf.dispose([a, b, c, lastA]);
    });

    it('headInputProjection gives what attn.hook_q/k/v see', () => {
      const { cfg } = m.model;
      const names: HookName[] = [blockHook(1, 'hook_resid_pre'), blockHook(1, 'attn.hook_q'), blockHook(1, 'attn.hook_k'), blockHook(1, 'attn.hook_v')];
      const { logits, cache } = m.model.runWithCache([m.clean[0]], names);
      const x = cache.get(names[0])!; // [1, p, d]
      const heads = Array.from({ length: cfg.nHeads }, (_, h) => h);
      const xs = tf.tile(x, [cfg.nHeads, 1, 1]); // [H, p, d]
      for (const [i, which] of (['q', 'k', 'v'] as const).entries()) {
        const got = m.model.headInputProjection(1, which, heads, xs); // [H, p, dh]
        const want = tf.transpose(tf.squeeze(cache.get(names[i + 1])!, [0]), [1, 0, 2]);
        expect(maxAbsDiff(got.dataSync(), want.dataSync()), which).toBeLessThan(2e-5);
        tf.dispose([got, want]);
      }
      tf.dispose([logits, xs]);
      cache.forEach((t) => t.dispose());
    });
  });
}

describe('the fixtures exercise each feature', () => {
  /** max |logit − HF| of the first prompt with config.json changed by `edit`. */
  function offBy(family: string, edit: (raw: Record<string, unknown>) => Record<string, unknown>): number {
    const dir = join(FIXTURES, `${family}-shared`);
    const ckpt = readCheckpointFolder(join(dir, 'model'));
    const model = modelFromTensors(edit(ckpt.configRaw as Record<string, unknown>), ckpt.tensors, ckpt.dir);
    const hf = flat(readJson<{ first_prompt: { logits: unknown } }>(dir, 'logits_hf.json').first_prompt.logits);
    const clean = readJsonLines(join(dir, 'dataset.jsonl'))[0].clean;
    const logits = model.forward([clean]);
    const diff = maxAbsDiff(logits.dataSync(), hf);
    logits.dispose();
    model.dispose();
    return diff;
  }

  it('gemma2: the sliding window, the attention soft-cap and the final soft-cap each change the logits', () => {
    expect(offBy('gemma2', (c) => ({ ...c, layer_types: ['full_attention', 'full_attention'] }))).toBeGreaterThan(0.1);
    expect(offBy('gemma2', (c) => ({ ...c, attn_logit_softcapping: null }))).toBeGreaterThan(0.01);
    expect(offBy('gemma2', (c) => ({ ...c, final_logit_softcapping: null }))).toBeGreaterThan(0.1);
  });

  it('neox: the parallel residual and the partial rotary each change the logits', () => {
    expect(offBy('neox', (c) => ({ ...c, use_parallel_residual: false }))).toBeGreaterThan(0.1);
    expect(offBy('neox', (c) => ({ ...c, rope_parameters: { ...(c.rope_parameters as object), partial_rotary_factor: 1 } }))).toBeGreaterThan(0.1);
  });

  it('llama: rope theta changes the logits', () => {
    expect(offBy('llama', (c) => ({ ...c, rope_parameters: { rope_theta: 10000, rope_type: 'default' } }))).toBeGreaterThan(0.1);
  });
});

describe('bad checkpoints fail with one message naming the problem', () => {
  const llamaDir = join(FIXTURES, 'llama-shared', 'model');

  /** A copy of the llama fixture in a temp folder, with config.json and tensors edited. */
  function folder(editConfig: (c: Record<string, unknown>) => Record<string, unknown>, editTensors: (t: Map<string, HostTensor>) => void = () => {}): string {
    const ckpt = readCheckpointFolder(llamaDir);
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-families-'));
    const tensors = new Map(ckpt.tensors);
    editTensors(tensors);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(editConfig(ckpt.configRaw as Record<string, unknown>)));
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    return dir;
  }

  function errorOf(dir: string): string {
    try {
      const ckpt = readCheckpointFolder(dir);
      modelFromTensors(ckpt.configRaw, ckpt.tensors, dir).dispose();
    } catch (e) {
      expect(e).toBeInstanceOf(CircuitryError);
      return (e as Error).message;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    throw new Error('expected an error');
  }

  it('an unsupported model_type: one line naming it and every supported family', () => {
    const msg = errorOf(folder((c) => ({ ...c, model_type: 'bert' })));
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/config\.json: unsupported architecture \(model_type "bert"\); supported families: /);
    for (const type of ['gpt2', 'gpt_neox', 'llama', 'qwen2', 'gemma2']) expect(msg).toContain(`"${type}"`);
  });

  it('a missing tensor: named, with its expected shape', () => {
    const msg = errorOf(folder((c) => c, (t) => t.delete('model.layers.1.self_attn.k_proj.weight')));
    expect(msg).toMatch(/: missing tensor 'model\.layers\.1\.self_attn\.k_proj\.weight' \(expected shape \[32,64\]\)$/);
  });

  it('a tensor of the wrong shape: named, with its shape and the expected one', () => {
    const msg = errorOf(folder((c) => c, (t) => t.set('model.layers.0.mlp.up_proj.weight', { shape: [176, 63], data: new Float32Array(176 * 63) })));
    expect(msg).toMatch(/: tensor 'model\.layers\.0\.mlp\.up_proj\.weight' has shape \[176,63\], expected \[176,64\] for this config$/);
  });

  it('an untied model without its unembedding', () => {
    const msg = errorOf(folder((c) => c, (t) => t.delete('lm_head.weight')));
    expect(msg).toMatch(/missing tensor 'lm_head\.weight' \(expected shape \[768,64\]; config says tie_word_embeddings is false\)/);
  });

  it('a head count that the key/value heads do not divide', () => {
    const msg = errorOf(folder((c) => ({ ...c, num_key_value_heads: 3 })));
    expect(msg).toMatch(/config\.json: 4 attention heads cannot be grouped over num_key_value_heads = 3 key\/value heads/);
  });

  it('a rope scaling it does not implement, by name', () => {
    const msg = errorOf(folder((c) => ({ ...c, rope_parameters: { rope_theta: 10000, rope_type: 'yarn', factor: 4 } })));
    expect(msg).toMatch(/rope type 'yarn' is not supported \(supported: default, linear, llama3\)/);
  });
});
