import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { compareSteering, greedyContinuation, meanDifference, nextTokenDistribution, promptActivations, steeredLogits, steeringVector } from '../src/interventions/steering.js';
import { CircuitryError } from '../src/errors.js';

/**
 * Steering planted-or ("is the first word a colour?": yes/no at the last position) with the
 * vector of the contrast pair "<bos> red" − "<bos> cat" read at the embeddings (layer 0's
 * resid_pre). At position 1 that vector is exactly W_E[red] − W_E[cat].
 */
describe('activation steering', () => {
  let loaded: LoadedModel;
  let enc: (s: string) => number[];
  let yes: number;
  let no: number;
  const PROMPT = '<bos> cat dog fox owl bee elk red';
  const POSITIVE = '<bos> red dog fox owl bee elk red';

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('planted-or');
    enc = (s) => loaded.tokenizer.encode(s);
    [yes] = enc('yes');
    [no] = enc('no');
  });
  afterAll(() => loaded.model.dispose());

  const logitDiff = (logits: tf.Tensor) => {
    const d = logits.arraySync() as number[][][];
    const last = d[0][d[0].length - 1];
    return last[yes] - last[no];
  };

  it('zero strength changes nothing, bit for bit', () => {
    const { model } = loaded;
    const sv = steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: 0 });
    for (const positions of [undefined, [1], [0, 3, 7]]) {
      for (const hook of ['resid_pre', 'mlp_post'] as const) {
        const v = hook === 'resid_pre' ? sv : steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: 0, hook });
        const plain = model.forward([enc(PROMPT)]);
        const steered = steeredLogits(model, [enc(PROMPT)], v, { strength: 0, positions });
        const a = plain.dataSync();
        const b = steered.dataSync();
        expect(b.length).toBe(a.length);
        let same = true;
        for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) same = false;
        expect(same, `${hook} ${positions ?? 'all'}`).toBe(true);
        // and a nonzero strength does change them (the comparison can fail)
        const moved = steeredLogits(model, [enc(PROMPT)], v, { strength: 1, positions });
        expect(Array.from(moved.dataSync()).some((x, i) => x !== a[i])).toBe(true);
        tf.dispose([plain, steered, moved]);
      }
    }
  });

  it('a contrast-pair vector moves the answer toward the positive side by a measured amount', () => {
    const { model } = loaded;
    const before = tf.memory().numTensors;
    const sv = steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: 0 });
    expect(sv.vector).toHaveLength(model.cfg.dModel);
    const base = model.forward([enc(PROMPT)]);
    const positive = model.forward([enc(POSITIVE)]);
    const diffs = [0, 0.25, 0.5, 1].map((strength) => {
      const l = steeredLogits(model, [enc(PROMPT)], sv, { strength, positions: [1] });
      const v = logitDiff(l);
      if (strength === 1) {
        // at strength 1 on position 1 the steered prompt is the positive prompt, up to rounding
        const a = l.dataSync();
        const b = positive.dataSync();
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-3);
      }
      l.dispose();
      return v;
    });
    console.log(`planted-or: logit(yes) − logit(no) at strengths 0, 0.25, 0.5, 1 on position 1: ${diffs.map((d) => d.toFixed(3)).join(', ')}`);
    expect(diffs[0]).toBeCloseTo(logitDiff(base), 6);
    expect(diffs[0]).toBeLessThan(-3); // "cat": no
    for (let i = 1; i < diffs.length; i++) expect(diffs[i]).toBeGreaterThan(diffs[i - 1]);
    expect(diffs[3]).toBeGreaterThan(3); // steered to yes
    expect(diffs[3]).toBeCloseTo(logitDiff(positive), 2);
    // negative strength pushes the other way
    const away = steeredLogits(model, [enc(POSITIVE)], sv, { strength: -1, positions: [1] });
    expect(logitDiff(away)).toBeLessThan(-3);
    tf.dispose([base, positive, away]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('mean differences over prompt sets (last position or all positions), distributions and greedy continuations', () => {
    const { model } = loaded;
    const colours = ['red', 'green', 'blue', 'pink'].map((w) => enc(`<bos> ${w}`));
    const animals = ['cat', 'dog', 'fox', 'owl', 'bee'].map((w) => enc(`<bos> ${w} ${w}`)); // a different length: fine
    const sv = steeringVector(model, colours, animals, { layer: 0 });
    expect(sv).toMatchObject({ nPositive: 4, nNegative: 5, reduce: 'last', hook: 'blocks.0.hook_resid_pre' });
    // 'last' is the mean of last-position activations: check against the activations themselves
    const pos = promptActivations(model, colours, sv.hook);
    const neg = promptActivations(model, animals, sv.hook);
    const manual = tf.tidy(() => tf.sub(tf.mean(pos, 0), tf.mean(neg, 0)).dataSync());
    sv.vector.forEach((x, i) => expect(x).toBeCloseTo(manual[i], 5));
    tf.dispose([pos, neg]);
    const mean = steeringVector(model, colours, animals, { layer: 0, reduce: 'mean' });
    expect(Array.from(mean.vector)).not.toEqual(Array.from(sv.vector));

    const c = compareSteering(model, enc(PROMPT), sv, { strength: 1, positions: [1], topK: 3, generate: 3 });
    expect(c.unsteered.top[0].id).toBe(no);
    expect(c.steered.top[0].id).toBe(yes);
    expect(c.steered.top[0].prob).toBeGreaterThan(0.5);
    expect(c.kl).toBeGreaterThan(1);
    expect(c.unsteered.continuation).toEqual(greedyContinuation(model, enc(PROMPT), 3));
    expect(c.steered.continuation[0]).toBe(yes);
    const zero = compareSteering(model, enc(PROMPT), sv, { strength: 0, topK: 3 });
    expect(zero.steered.top).toEqual(zero.unsteered.top);
    expect(zero.kl).toBe(0);
    expect(nextTokenDistribution(model, enc(PROMPT)).top[0].id).toBe(no);
  });

  it('rejects bad input with clear errors', () => {
    const { model } = loaded;
    const sv = steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: 0 });
    // a vector of the wrong width for the hook
    expect(() => steeredLogits(model, [enc(PROMPT)], { hook: 'blocks.0.mlp.hook_post', vector: sv.vector }, { strength: 1 })).toThrow(
      /steering vector of width 64 does not fit blocks.0.mlp.hook_post, whose activations are 256 wide/,
    );
    expect(() => steeredLogits(model, [enc(PROMPT)], { hook: sv.hook, vector: new Float32Array(10) }, { strength: 1 })).toThrow(/width 10 does not fit/);
    // layers out of range, unknown hooks
    expect(() => steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: 2 })).toThrow(/layer 2 is out of range: the model has layers 0..1/);
    expect(() => steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: -1 })).toThrow(CircuitryError);
    expect(() => steeringVector(model, [enc('<bos> red')], [enc('<bos> cat')], { layer: 0, hook: 'q' as never })).toThrow(/hook 'q': expected one of/);
    // prompt sets read at hooks of different shapes
    const a = promptActivations(model, [enc('<bos> red')], 'blocks.0.hook_resid_pre');
    const b = promptActivations(model, [enc('<bos> cat')], 'blocks.0.mlp.hook_post');
    expect(() => meanDifference(a, b)).toThrow(/prompt sets of different hook shapes: the positive set's activations are 64 wide but the negative set's are 256/);
    tf.dispose([a, b]);
    // positions outside the prompt, empty sets, too long generations
    expect(() => steeredLogits(model, [enc(PROMPT)], sv, { strength: 1, positions: [8] })).toThrow(/position 8 is outside the prompt \(positions 0..7\)/);
    expect(() => steeringVector(model, [], [enc('<bos> cat')], { layer: 0 })).toThrow(/positive prompts: no prompts/);
    expect(() => steeringVector(model, [enc('<bos> red')], [[99]], { layer: 0 })).toThrow(/negative prompts: token id 99/);
    expect(() => greedyContinuation(model, enc(PROMPT), 9)).toThrow(/generate: 8 prompt tokens \+ 9 generated exceed the model's context of 16/);
    expect(() => steeredLogits(model, [enc(PROMPT)], sv, { strength: NaN })).toThrow(/strength: expected a finite number/);
  });
});
