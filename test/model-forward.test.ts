import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { configFromHf } from '../src/model/config.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { gpt2WeightsFromTensors } from '../src/model/weights.js';
import { Transformer } from '../src/model/transformer.js';
import type { HookName } from '../src/model/hooks.js';
import { TINY, readJson, flat, maxAbsDiff } from './helpers/fixtures.js';

function loadTiny(): Transformer {
  const dir = join(TINY, 'model');
  const cfg = configFromHf(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const tensors = readSafetensors(join(dir, 'model.safetensors'));
  return new Transformer(cfg, gpt2WeightsFromTensors(cfg, tensors, dir));
}

const tokens = readJson<number[][]>(TINY, 'tokens.json');
const hfLogits = readJson<{ shape: number[]; logits: unknown }>(TINY, 'logits_hf.json');
const tlActs = readJson<Record<string, { shape: number[]; value: unknown }>>(TINY, 'activations_tl_first_prompt.json');

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`tiny-gpt2 forward on ${backend}`, () => {
    let model: Transformer;
    beforeAll(async () => {
      await initBackend(backend);
      model = loadTiny();
    });
    afterAll(() => model.dispose());

    it('matches HuggingFace logits to 1e-4', () => {
      const logits = model.forward(tokens);
      expect(logits.shape).toEqual(hfLogits.shape);
      expect(maxAbsDiff(logits.dataSync(), flat(hfLogits.logits))).toBeLessThan(1e-4);
      logits.dispose();
    });

    it('matches every TransformerLens activation of the first prompt to 1e-4', () => {
      const names = Object.keys(tlActs) as HookName[];
      const { logits, cache } = model.runWithCache([tokens[0]], names);
      for (const name of names) {
        const act = cache.get(name)!;
        // TransformerLens' cache drops the batch dimension for one prompt
        expect(act.shape.slice(1), name).toEqual(tlActs[name].shape);
        expect(maxAbsDiff(act.dataSync(), flat(tlActs[name].value)), name).toBeLessThan(1e-4);
      }
      logits.dispose();
      cache.forEach((t) => t.dispose());
    });

    it('split q/k/v inputs and per-head results give the same logits', () => {
      const a = model.forward(tokens);
      const b = model.forward(tokens, { splitQkvInput: true, useAttnResult: true });
      expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(2e-5);
      tf.dispose([a, b]);
    });

    it('lastQueryOnly gives the last logits and gradients of the full forward, with the last block trimmed', () => {
      const L = model.cfg.nLayers;
      const [b, p] = [tokens.length, tokens[0].length];
      const full = model.forward(tokens);
      const trimmed = model.forward(tokens, { lastPositionOnly: true, lastQueryOnly: true });
      const fullLast = tf.slice(full, [0, p - 1, 0], [b, 1, -1]);
      expect(trimmed.shape).toEqual([b, 1, model.cfg.dVocab]);
      expect(maxAbsDiff(trimmed.dataSync(), fullLast.dataSync())).toBeLessThan(1e-5);
      tf.dispose([full, trimmed, fullLast]);
      expect(() => model.forward(tokens, { lastQueryOnly: true })).toThrow(/lastPositionOnly/);

      const metric = (logits: tf.Tensor) => tf.tidy(() => tf.sum(tf.slice(logits, [0, logits.shape[1]! - 1, 7], [b, 1, 1])) as tf.Scalar);
      const names: HookName[] = [`blocks.${L - 1}.attn.hook_q`, `blocks.${L - 1}.attn.hook_k`, `blocks.${L - 1}.hook_mlp_in`, `blocks.${L - 1}.hook_resid_post`, 'blocks.0.hook_resid_mid'];
      const a = model.gradients(tokens, names, metric, { lastPositionOnly: true });
      const t = model.gradients(tokens, names, metric, { lastPositionOnly: true, lastQueryOnly: true });
      expect(t.value).toBeCloseTo(a.value, 4);
      for (const name of names) {
        const ga = a.grads.get(name)!;
        const gt = t.grads.get(name)!;
        const trimmedHere = !name.endsWith('hook_k') && name.startsWith(`blocks.${L - 1}.`);
        expect(gt.shape[1], name).toBe(trimmedHere ? 1 : p);
        // the untrimmed gradient is zero before the last position wherever the trimmed one has no entry
        const lastOfA = trimmedHere ? tf.slice(ga, ga.shape.map((_, i) => (i === 1 ? p - 1 : 0)), ga.shape.map((s, i) => (i === 1 ? 1 : s))) : ga;
        expect(maxAbsDiff(gt.dataSync(), lastOfA.dataSync()), name).toBeLessThan(1e-5);
        if (trimmedHere) {
          expect(Math.max(...Array.from(tf.slice(ga, ga.shape.map(() => 0), ga.shape.map((s, i) => (i === 1 ? p - 1 : s))).dataSync(), Math.abs)), name).toBe(0);
          lastOfA.dispose();
        }
      }
      [...a.grads.values(), ...t.grads.values()].forEach((g) => g.dispose());
    });

    it('start/stop at a layer composes to the full forward', () => {
      const full = model.forward(tokens);
      const mid = model.forward(tokens, { stopAtLayer: 1 });
      const rest = model.forward(tokens, { startAtLayer: 1, residual: mid });
      expect(maxAbsDiff(full.dataSync(), rest.dataSync())).toBeLessThan(1e-6);
      tf.dispose([full, mid, rest]);
    });

    it('gradients at hooks equal finite differences', () => {
      const prompt = [tokens[1].slice(0, 8)];
      const metric = (logits: tf.Tensor) => tf.tidy(() => {
        const last = tf.slice(logits, [0, 7, 0], [1, 1, -1]);
        return tf.sub(tf.sum(tf.slice(last, [0, 0, 3], [1, 1, 1])), tf.sum(tf.slice(last, [0, 0, 5], [1, 1, 1]))) as tf.Scalar;
      });
      const names: HookName[] = ['blocks.0.hook_resid_mid', 'blocks.1.attn.hook_z', 'blocks.1.hook_q_input', 'hook_embed'];
      const { value, grads } = model.gradients(prompt, names, metric);
      for (const name of names) {
        const g = grads.get(name)!.dataSync();
        const shape = grads.get(name)!.shape;
        // probe a few coordinates with a central difference (float32: eps 1e-2)
        for (const idx of [3, 17, g.length - 5]) {
          const eps = 1e-2;
          const probe = (sign: number) => {
            const hook = (act: tf.Tensor) => {
              const delta = new Float32Array(act.size);
              delta[idx] = sign * eps;
              return tf.add(act, tf.tensor(delta, act.shape));
            };
            const out = tf.tidy(() => metric(model.forward(prompt, { hooks: { [name]: hook } })));
            const v = out.dataSync()[0];
            out.dispose();
            return v;
          };
          const fd = (probe(1) - probe(-1)) / (2 * eps);
          expect(Math.abs(fd - g[idx]), `${name}[${idx}] of [${shape}]`).toBeLessThan(2e-3 + 2e-2 * Math.abs(g[idx]));
        }
      }
      expect(Number.isFinite(value)).toBe(true);
      grads.forEach((t) => t.dispose());
    });

    it('leaks no tensors across forward, cached run and backward', () => {
      // the first backward pass materialises each weight's transpose once (a cache, not a leak)
      model.gradients(tokens, ['hook_embed'], (l) => tf.mean(l) as tf.Scalar).grads.forEach((t) => t.dispose());
      const before = tf.memory().numTensors;
      model.forward(tokens).dispose();
      const { logits, cache } = model.runWithCache(tokens, ['blocks.1.attn.hook_pattern', 'blocks.0.attn.hook_result']);
      logits.dispose();
      cache.forEach((t) => t.dispose());
      const { grads } = model.gradients(tokens, ['blocks.1.hook_resid_pre'], (l) => tf.mean(l) as tf.Scalar);
      grads.forEach((t) => t.dispose());
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
