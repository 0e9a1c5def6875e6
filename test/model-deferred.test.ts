import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../src/model/load.js';
import { isBuilt } from '../src/model/deferred.js';
import { Transformer } from '../src/model/transformer.js';
import { parseSafetensors, safetensorsBytes } from '../src/model/safetensors-bytes.js';

describe('shared weights: the parent builds its tfjs model on first use only', () => {
  it('reads cfg without building, then gives the eager model logits', async () => {
    const eager = await loadModel('mini-gpt2-l4h8');
    const shared = await loadModel('mini-gpt2-l4h8', { shareWeights: true });
    expect(isBuilt(eager.model)).toBe(true);
    expect(isBuilt(shared.model)).toBe(false);
    expect(shared.model.cfg).toEqual(eager.model.cfg);
    expect(shared.model).toBeInstanceOf(Transformer);
    const tensorsBefore = tf.memory().numTensors;
    expect(shared.model.cfg.nLayers).toBe(eager.model.cfg.nLayers); // still nothing built
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    const tokens = [[1, 2, 3, 4, 5]];
    const a = eager.model.forward(tokens);
    const b = shared.model.forward(tokens);
    expect(isBuilt(shared.model)).toBe(true);
    expect(b.shape).toEqual(a.shape);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([a, b]);
    eager.model.dispose();
    shared.model.dispose();
  });

  it('disposing an unbuilt model builds nothing; the shared buffer is a safetensors file of the weights', async () => {
    const shared = await loadModel('mini-gpt2-l4h8', { shareWeights: true });
    const before = tf.memory().numTensors;
    shared.model.dispose();
    expect(isBuilt(shared.model)).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
    // written in place into the SharedArrayBuffer: the same bytes as the plain serialisation
    const bytes = new Uint8Array(shared.shared!.bytes!);
    const views = parseSafetensors(bytes, 'shared');
    expect(views.size).toBeGreaterThan(10);
    expect(Buffer.from(safetensorsBytes(views)).equals(Buffer.from(bytes))).toBe(true);
  });
});
