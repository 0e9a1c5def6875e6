import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CircuitryError } from '../src/errors.js';
import { type HostTensor, writeSafetensors } from '../src/model/safetensors.js';
import { initBackend } from '../src/backend/index.js';
import { readCheckpointFolder } from '../src/model/checkpoint.js';
import { checkpointOf, modelFromTensors } from '../src/model/arch/index.js';
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

    it('a vocabulary subset gives those tokens\' logits, in its order', () => {
      const V = m.model.cfg.dVocab;
      const ids = [V - 1, 3, 0, Math.floor(V / 2)];
      const subset = m.model.vocabularySubset(ids)!;
      const full = m.model.forward(m.clean.slice(0, 3), { lastPositionOnly: true });
      const some = m.model.forward(m.clean.slice(0, 3), { lastPositionOnly: true, vocabulary: subset });
      expect(some.shape).toEqual([3, 1, ids.length]);
      const want = tf.gather(full, tf.tensor1d(ids, 'int32'), 2);
      expect(maxAbsDiff(some.dataSync(), want.dataSync())).toBeLessThan(2e-5);
      tf.dispose([full, some, want]);
      subset.dispose();
      expect(() => m.model.vocabularySubset([V])).toThrow(`token ${V} is outside the vocabulary [0, ${V - 1}]`);
    });

    it('per-head residual inputs (headInputs, one row per head or three) give the same logits', () => {
      const { nHeads: H, dModel: d } = m.model.cfg;
      const prompts = m.clean.slice(0, 3);
      const a = m.model.forward(prompts);
      for (const perHead of [1, 3] as const) {
        const headInputs = (_l: number, resid: tf.Tensor) => {
          const [b, p] = resid.shape;
          // [b·p, H·G + 1, d]: every head's own copy of the stream, plus one ignored rider row
          const rows = tf.add(tf.reshape(resid, [b * p, 1, d]), tf.zeros([1, H * perHead + 1, 1]));
          return { rows, perHead };
        };
        const b = m.model.forward(prompts, { headInputs });
        expect(maxAbsDiff(a.dataSync(), b.dataSync()), `perHead ${perHead}`).toBeLessThan(2e-5);
        b.dispose();
      }
      a.dispose();
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

describe('TransformerLens hook points of the new shapes', () => {
  let gemma: Transformer;
  let neox: Transformer;
  beforeAll(() => {
    gemma = load('gemma2').model;
    neox = load('neox').model;
  });
  afterAll(() => {
    gemma.dispose();
    neox.dispose();
  });

  it("hook_embed is Gemma's embedding after the √d scale; rotary models have no hook_pos_embed", () => {
    const ckpt = readCheckpointFolder(join(FIXTURES, 'gemma2-shared', 'model'));
    const wte = ckpt.tensors.get('model.embed_tokens.weight')!;
    const { logits, cache } = gemma.runWithCache([[2, 5]], ['hook_embed']);
    const got = cache.get('hook_embed')!.dataSync();
    const d = gemma.cfg.dModel;
    for (let i = 0; i < d; i++) expect(got[d + i]).toBeCloseTo(8 * wte.data[5 * d + i], 5);
    tf.dispose([logits, ...cache.values()]);
    expect(() => gemma.runWithCache([[2, 5]], ['hook_pos_embed'])).toThrow(/hook 'hook_pos_embed' was not reached: the model has no learned position embedding \(its positions are rotary\)/);
  });

  it('hook_q is before the rotation and hook_rot_q after it (NeoX rotates the first 4 of 16 dims only)', () => {
    const names = [blockHook(0, 'attn.hook_q'), blockHook(0, 'attn.hook_rot_q')];
    const { logits, cache } = neox.runWithCache([[5, 6, 7]], names);
    const q = cache.get(names[0])!.arraySync() as number[][][][];
    const rot = cache.get(names[1])!.arraySync() as number[][][][];
    // position 0: no rotation; later positions: the first 4 dims turn, the other 12 pass through
    expect(rot[0][0]).toEqual(q[0][0]);
    expect(rot[0][2][1].slice(4)).toEqual(q[0][2][1].slice(4));
    expect(maxAbsDiff(rot[0][2][1].slice(0, 4), q[0][2][1].slice(0, 4))).toBeGreaterThan(1e-3);
    tf.dispose([logits, ...cache.values()]);
  });

  it('a gated MLP has hook_pre (gate) and hook_pre_linear, and hook_post = act(pre) · pre_linear', () => {
    const names = [blockHook(1, 'mlp.hook_pre'), blockHook(1, 'mlp.hook_pre_linear'), blockHook(1, 'mlp.hook_post')];
    const { logits, cache } = gemma.runWithCache([[2, 5, 9]], names);
    const [pre, lin, post] = names.map((n) => cache.get(n)!.dataSync());
    const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    for (let i = 0; i < pre.length; i += 7) expect(post[i]).toBeCloseTo(gelu(pre[i]) * lin[i], 5);
    tf.dispose([logits, ...cache.values()]);
    expect(() => neox.runWithCache([[1]], [blockHook(0, 'mlp.hook_pre_linear')])).toThrow(/MLP is not gated/);
  });

  it('a parallel block has no resid_mid; its MLP reads the block input', () => {
    const names = [blockHook(1, 'hook_resid_pre'), blockHook(1, 'hook_mlp_in')];
    const { logits, cache } = neox.runWithCache([[5, 6]], names);
    expect(maxAbsDiff(cache.get(names[0])!.dataSync(), cache.get(names[1])!.dataSync())).toBe(0);
    tf.dispose([logits, ...cache.values()]);
    expect(() => neox.runWithCache([[1]], [blockHook(0, 'hook_resid_mid')])).toThrow(/no resid_mid/);
  });
});

describe('saving a model in its family checkpoint names', () => {
  for (const family of ['llama', 'qwen2']) {
    it(`${family}: checkpointOf gives back the checkpoint's tensors (k/v regrouped, nn.Linear layout) and a config that reloads`, () => {
      const ckpt = readCheckpointFolder(join(FIXTURES, `${family}-shared`, 'model'));
      const model = modelFromTensors(ckpt.configRaw, ckpt.tensors, ckpt.dir);
      const saved = checkpointOf(model);
      expect([...saved.tensors.keys()].sort()).toEqual([...ckpt.tensors.keys()].sort());
      for (const [name, t] of ckpt.tensors) {
        const s = saved.tensors.get(name)!;
        expect(s.shape, name).toEqual(t.shape);
        expect(maxAbsDiff(s.data, t.data), name).toBe(0);
      }
      const again = modelFromTensors(saved.config, saved.tensors, 'saved');
      expect(again.cfg).toEqual(model.cfg);
      const prompt = [readJsonLines(join(FIXTURES, `${family}-shared`, 'dataset.jsonl'))[0].clean];
      const [a, b] = [model.forward(prompt), again.forward(prompt)];
      expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
      tf.dispose([a, b]);
      model.dispose();
      again.dispose();
    });
  }
});

describe('a trainable grouped-query model', () => {
  it('computes what the frozen one does, trains its k/v grouped, and saves what it computes', () => {
    const ckpt = readCheckpointFolder(join(FIXTURES, 'llama-shared', 'model'));
    const frozen = modelFromTensors(ckpt.configRaw, ckpt.tensors, ckpt.dir);
    const model = modelFromTensors(ckpt.configRaw, ckpt.tensors, ckpt.dir, { trainable: true });
    const prompts = readJsonLines(join(FIXTURES, 'llama-shared', 'dataset.jsonl')).slice(0, 4).map((p) => p.clean);
    const [a, b] = [frozen.forward(prompts), model.forward(prompts)];
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-5);
    tf.dispose([a, b]);
    // k_proj is one [64, 32] variable per layer (2 kv heads of 16), not ungrouped copies
    const shapes = model.variables().map((v) => v.shape.join('x'));
    expect(shapes.filter((s) => s === '64x32')).toHaveLength(4);
    const opt = tf.train.sgd(0.5);
    // every variable but the embedding (first): wasm has no gradient for gather
    opt.minimize(() => tf.mean(tf.square(model.forward(prompts, { lastPositionOnly: true }))) as tf.Scalar, false, model.variables().slice(1));
    opt.dispose();
    const saved = checkpointOf(model);
    const k0 = saved.tensors.get('model.layers.0.self_attn.k_proj.weight')!;
    expect(maxAbsDiff(k0.data, ckpt.tensors.get('model.layers.0.self_attn.k_proj.weight')!.data)).toBeGreaterThan(1e-4);
    const reloaded = modelFromTensors(saved.config, saved.tensors, 'trained');
    const [c, d] = [model.forward(prompts), reloaded.forward(prompts)];
    expect(maxAbsDiff(c.dataSync(), d.dataSync())).toBeLessThan(1e-5);
    tf.dispose([c, d]);
    [frozen, model, reloaded].forEach((m) => m.dispose());
  });
});
