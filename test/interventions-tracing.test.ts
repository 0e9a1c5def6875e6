import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { causalTrace, embeddingStd, traceMapToSweep, type CausalTraceResult, type TraceKind } from '../src/interventions/causal-tracing.js';
import { CircuitryError } from '../src/errors.js';

/**
 * Causal tracing on planted-and ("are the first two words colours?"): the AND of the two
 * words' marks is computed by m0 at position 2 (from a0.h2, which moves position 1's mark
 * there), and a1.h1 moves the result from position 2 to the last position. Noise goes on the
 * two words (positions 1 and 2).
 */
describe('causal tracing', () => {
  let loaded: LoadedModel;
  let prompts: number[][];
  let answers: number[][];
  const map = (r: CausalTraceResult, kind: TraceKind) => r.maps.find((m) => m.kind === kind)!;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel('planted-and');
    const ds = loaded.zoo!.dataset!('both-colors', { n: 3, seed: 1 });
    prompts = ds.clean;
    answers = ds.answers;
  });
  afterAll(() => loaded.model.dispose());

  it('σ is a multiple of the embedding matrix’s standard deviation', () => {
    const std = embeddingStd(loaded.model);
    // the planted embeddings are two unit features per token in 64 dimensions (TOK and ±MARK)
    expect(std).toBeGreaterThan(0.1);
    expect(std).toBeLessThan(0.3);
    const r = causalTrace(loaded.model, prompts[0], answers[0], { noisePositions: [1, 2], samples: 2, seed: 0, kinds: ['mlp_out'] });
    expect(r.embeddingStd).toBeCloseTo(std, 6);
    expect(r.sigma).toBeCloseTo(3 * std, 6);
    expect(r.sigmaScale).toBe(3);
  });

  it('the restored-state maps peak at the planted components’ layers and the corrupted positions', () => {
    for (let i = 0; i < prompts.length; i++) {
      const before = tf.memory().numTensors;
      const r = causalTrace(loaded.model, prompts[i], answers[i], { noisePositions: [1, 2], samples: 10, seed: i });
      expect(tf.memory().numTensors).toBe(before);
      const P = prompts[i].length;
      expect(r.clean - r.corrupted, `prompt ${i}`).toBeGreaterThan(0.1);
      // m0 at position 2 computes the AND: its output is the MLP state whose restoration matters.
      // (Restoring m0 elsewhere on a noised word can matter a little: the noise also perturbs
      // that position's key for a1.h1, whose attention is then not all on position 2.)
      const mlp = map(r, 'mlp_out');
      expect(mlp.peak, `prompt ${i}`).toMatchObject({ layer: 0, position: 2 });
      const peak = mlp.indirect[0][2];
      expect(peak).toBeGreaterThan(0.1);
      mlp.indirect.forEach((row, l) =>
        row.forEach((v, pos) => {
          if (l === 0 && pos === 2) return;
          // positions the noise cannot reach at all, and layer 1's MLP (decoy units only) restore nothing
          expect(Math.abs(v), `mlp ${l}@${pos}`).toBeLessThan(l === 1 || pos > 2 ? 1e-4 : 0.5 * peak);
        }),
      );
      // the residual stream after m0 at the corrupted position carries it; before m0 a single restored word is not enough
      const resid = map(r, 'resid_pre');
      expect(resid.peak).toMatchObject({ layer: 1, position: 2 });
      expect(resid.restored[1][2]).toBeGreaterThan(resid.restored[0][1]);
      expect(resid.restored[1][2]).toBeGreaterThan(resid.restored[0][2]);
      // states that noise never reaches restore nothing: exactly the corrupted value
      for (let pos = 3; pos < P; pos++) expect(resid.restored[0][pos]).toBeCloseTo(r.corrupted, 6);
      // the last layer's output at the last position is the whole clean computation
      expect(map(r, 'resid_post').restored[1][P - 1]).toBeCloseTo(r.clean, 5);
      // a1.h1 moves the flag to the last position
      expect(map(r, 'attn_out').peak).toMatchObject({ layer: 1, position: P - 1 });
    }
  });

  it('is deterministic for a seed, and stacking restorations changes nothing', () => {
    const opts = { noisePositions: [1, 2], samples: 4, seed: 9, kinds: ['resid_pre', 'mlp_out'] as TraceKind[] };
    const a = causalTrace(loaded.model, prompts[0], answers[0], opts);
    const b = causalTrace(loaded.model, prompts[0], answers[0], opts);
    expect(b.maps).toEqual(a.maps);
    expect(b.corruptedPerSample).toEqual(a.corruptedPerSample);
    const other = causalTrace(loaded.model, prompts[0], answers[0], { ...opts, seed: 10 });
    expect(other.corruptedPerSample).not.toEqual(a.corruptedPerSample);
    // one restoration per pass (no stacking, every pass from the embeddings' layer on)
    const single = causalTrace(loaded.model, prompts[0], answers[0], { ...opts, stackBudget: 1 });
    expect(single.forwardPasses).toBe(2 + 2 * 2 * prompts[0].length);
    expect(a.forwardPasses).toBeLessThan(single.forwardPasses);
    single.maps.forEach((m, k) => m.restored.forEach((row, l) => row.forEach((v, pos) => expect(v).toBeCloseTo(a.maps[k].restored[l][pos], 5))));
  });

  it('restores a window of layers together, and maps to report heatmaps', () => {
    const r = causalTrace(loaded.model, prompts[0], answers[0], { noisePositions: [1, 2], samples: 4, seed: 2, kinds: ['mlp_out'], window: 2 });
    // with both layers' MLPs restored together, every row contains m0 at position 2
    const m = map(r, 'mlp_out');
    expect(m.restored[0][2]).toBeCloseTo(m.restored[1][2], 6);
    const sweep = traceMapToSweep(r, m);
    expect(sweep).toMatchObject({ kind: 'trace:mlp_out', direction: 'denoise', metric: 'prob', rows: ['L0', 'L1'] });
    expect(sweep.cols).toHaveLength(prompts[0].length);
    expect(sweep.recovery[0][2]).toBeCloseTo((m.restored[0][2] - r.corrupted) / (r.clean - r.corrupted), 10);
  });

  it('rejects bad input with clear errors', () => {
    const { model } = loaded;
    const P = prompts[0].length;
    expect(() => causalTrace(model, prompts[0], answers[0], { noisePositions: [1, P] })).toThrow(new RegExp(`position ${P} is outside the prompt \\(positions 0..${P - 1}`));
    expect(() => causalTrace(model, prompts[0], answers[0], { noisePositions: [-1] })).toThrow(CircuitryError);
    expect(() => causalTrace(model, prompts[0], answers[0], { noisePositions: [] })).toThrow(/at least one position/);
    expect(() => causalTrace(model, prompts[0], answers[0], { noisePositions: [1, 1] })).toThrow(/lists a position twice/);
    expect(() => causalTrace(model, prompts[0], [999])).toThrow(/answer token 999 is outside the vocabulary/);
    expect(() => causalTrace(model, prompts[0], answers[0], { sigmaScale: -1 })).toThrow(/sigma: expected a positive multiple/);
    expect(() => causalTrace(model, prompts[0], answers[0], { samples: 0 })).toThrow(/samples: expected an integer/);
    expect(() => causalTrace(model, prompts[0], answers[0], { window: 3 })).toThrow(/window: expected an integer from 1 to 2/);
    expect(() => causalTrace(model, [], answers[0])).toThrow(/prompt is empty/);
  });
});
