import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';

/** Values 0, 1, 2, ... so that every element is told apart. */
const iota = (shape: number[]) => tf.reshape(tf.range(0, shape.reduce((a, b) => a * b, 1), 1, 'float32'), shape);

/** Element at a multi-index of a row-major array of `shape`. */
function at(values: ArrayLike<number>, shape: number[], idx: number[]): number {
  let offset = 0;
  for (let a = 0; a < shape.length; a++) offset = offset * shape[a] + idx[a];
  return values[offset];
}

/** Every multi-index of `shape`, in row-major order. */
function* indices(shape: number[]): Generator<number[]> {
  const idx = shape.map(() => 0);
  const n = shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    yield [...idx];
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
}

/** tf.concat(xs, axis) checked element by element against the input it came from (disposes xs). */
function expectConcat(xs: tf.Tensor[], axis: number): void {
  const shapes = xs.map((x) => x.shape);
  const y = tf.concat(xs, axis);
  expect(y.dtype).toBe(xs[0].dtype);
  const vals = xs.map((x) => x.dataSync());
  const ys = y.dataSync();
  let i = 0;
  for (const idx of indices(y.shape)) {
    let k = 0;
    let off = idx[axis];
    while (off >= shapes[k][axis]) off -= shapes[k++][axis];
    expect(ys[i++]).toBe(at(vals[k], shapes[k], idx.map((v, a) => (a === axis ? off : v))));
  }
  tf.dispose([...xs, y]);
}

// The wasm backend's Slice, Unpack, Concat, GatherV2, SplitV, Transpose and Identity are replaced (src/backend/wasm-kernels.ts); these
// check them element by element against index arithmetic.
describe('replacement wasm kernels', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  it.each([
    { shape: [4, 5, 6], begin: [1, 2, 3], size: [2, 3, 2] }, // partial on every axis
    { shape: [4, 5, 6], begin: [1, 0, 0], size: [2, 5, 6] }, // whole trailing axes: one run
    { shape: [4, 5, 6], begin: [0, 1, 0], size: [4, 3, 6] }, // whole last axis
    { shape: [3, 70, 2], begin: [1, 3, 0], size: [1, 66, 2] }, // a run longer than 64
    { shape: [2, 3, 4, 5, 6], begin: [1, 0, 1, 0, 0], size: [1, 3, 2, 5, 6] },
    { shape: [7], begin: [2], size: [4] },
  ])('slices $shape at $begin size $size', ({ shape, begin, size }) => {
    const x = iota(shape);
    const xs = x.dataSync();
    const y = tf.slice(x, begin, size);
    expect(y.shape).toEqual(size);
    const ys = y.dataSync();
    let i = 0;
    for (const idx of indices(size)) expect(ys[i++]).toBe(at(xs, shape, idx.map((v, a) => v + begin[a])));
    tf.dispose([x, y]);
  });

  it.each([0, 1, 2])('unstacks along axis %i', (axis) => {
    const shape = [3, 4, 5];
    const x = iota(shape);
    const xs = x.dataSync();
    const parts = tf.unstack(x, axis);
    expect(parts).toHaveLength(shape[axis]);
    parts.forEach((part, k) => {
      const ps = part.dataSync();
      let i = 0;
      for (const idx of indices(part.shape)) {
        const full = [...idx];
        full.splice(axis, 0, k);
        expect(ps[i++]).toBe(at(xs, shape, full));
      }
    });
    tf.dispose([x, ...parts]);
  });

  it.each([0, 1, 2])('splits along axis %i into unequal parts', (axis) => {
    const shape = [4, 6, 5];
    const x = iota(shape);
    const xs = x.dataSync();
    const sizes = axis === 1 ? [1, 3, 2] : [shape[axis] - 1, 1];
    const parts = tf.split(x, sizes, axis);
    let offset = 0;
    parts.forEach((part, k) => {
      expect(part.shape[axis]).toBe(sizes[k]);
      const ps = part.dataSync();
      let i = 0;
      for (const idx of indices(part.shape)) expect(ps[i++]).toBe(at(xs, shape, idx.map((v, a) => (a === axis ? v + offset : v))));
      offset += sizes[k];
    });
    tf.dispose([x, ...parts]);
  });

  it.each([0, 1, 2])('concatenates along axis %i, short and long runs', (axis) => {
    const shapes = [
      [2, 3, 4],
      [2, 3, 4],
      [2, 3, 4],
    ].map((s, i) => s.map((v, a) => (a === axis ? [1, 70, 2][i] : v)));
    expectConcat(shapes.map((s, i) => tf.add(iota(s), 1000 * i)), axis);
  });

  it.each([0, 1, 2])('gathers along axis %i, with repeated indices', (axis) => {
    const shape = [3, 4, 5];
    const x = iota(shape);
    const xs = x.dataSync();
    const picks = [shape[axis] - 1, 0, shape[axis] - 1];
    const y = tf.gather(x, tf.tensor1d(picks, 'int32'), axis);
    expect(y.shape).toEqual(shape.map((s, a) => (a === axis ? picks.length : s)));
    const ys = y.dataSync();
    let i = 0;
    for (const idx of indices(y.shape)) expect(ys[i++]).toBe(at(xs, shape, idx.map((v, a) => (a === axis ? picks[v] : v))));
    tf.dispose([x, y]);
  });

  it.each([
    { shape: [5, 3, 70], perm: [1, 0, 2] }, // rows of 70 move: the copy path
    { shape: [2, 3, 4, 80], perm: [2, 0, 1, 3] },
    { shape: [2, 3, 8, 16], perm: [1, 0, 2, 3] }, // two trailing axes stay: runs of 128
    { shape: [4, 6, 5], perm: [1, 0, 2] }, // runs of 5: the original kernel
    { shape: [7, 66], perm: [1, 0] }, // the last axis moves: the original kernel
  ])('transposes $shape by $perm', ({ shape, perm }) => {
    const x = iota(shape);
    const xs = x.dataSync();
    const y = tf.transpose(x, perm);
    expect(y.shape).toEqual(perm.map((a) => shape[a]));
    const ys = y.dataSync();
    let i = 0;
    for (const idx of indices(y.shape)) {
      const src = new Array<number>(shape.length);
      perm.forEach((a, j) => (src[a] = idx[j]));
      expect(ys[i++]).toBe(at(xs, shape, src));
    }
    tf.dispose([x, y]);
  });

  it('rejects a gather index out of range', () => {
    const x = iota([3, 2]);
    expect(() => tf.gather(x, tf.tensor1d([3], 'int32'))).toThrow(/index value 3 is not in \[0, 2\]/);
    x.dispose();
  });

  it.each([
    { axis: 1, dtype: 'float32' },
    { axis: 2, dtype: 'float32' },
    { axis: 2, dtype: 'int32' },
  ] as const)('concatenates after a long first input (copied by PadV2) along axis $axis, $dtype', ({ axis, dtype }) => {
    // the first input's rows are ≥ 64 long, then a short input and a one-wide one
    const shapes = [70, 3, 1].map((n) => [2, 3, 4].map((v, a) => (a === axis ? n : v)));
    expectConcat(shapes.map((s, i) => tf.cast(tf.add(iota(s), 1000 * i), dtype)), axis);
  });

  it('clones by sharing the data: the clone outlives its source, and the memory goes with the last', () => {
    const before = tf.memory().numDataBuffers;
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(before + 1); // one buffer for the two
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tf.memory().numDataBuffers).toBe(before + 1);
    y.dispose();
    expect(tf.memory().numDataBuffers).toBe(before);
  });

  it('concatenates int32 tensors too', () => {
    const a = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    const b = tf.tensor2d([5, 6], [2, 1], 'int32');
    const y = tf.concat([a, b], 1);
    expect(y.dtype).toBe('int32');
    expect(Array.from(y.dataSync())).toEqual([1, 2, 5, 3, 4, 6]);
    tf.dispose([a, b, y]);
  });
});
