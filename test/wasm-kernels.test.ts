import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { initBackend } from '../src/backend/index.js';
import { RowBuffer, columnDifference, productNT, rowMoments, simdLoaded } from '../src/backend/simd.js';
import { WAT_SOURCES, assembleWat, fuseMultiplyAdds } from '../scripts/wat.js';
import { simdLoopsCode } from '../src/backend/simd-code.js';
import { RowsWeight } from '../src/model/ops.js';

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

// The wasm backend's Slice, Unpack, Concat, GatherV2, SplitV, Transpose, Identity and batched BatchMatMul are replaced (src/backend/wasm-kernels.ts); these
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

/** Deterministic values in [-1, 1) that differ from element to element. */
const noise = (shape: number[], salt: number) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => (((i + 1) * 2654435761 + salt * 40503) % 2000) / 1000 - 1), shape);
};

/** matMul by index arithmetic: a [...A, r, c] and b [...B, r, c], batch axes broadcast as numpy's. */
function referenceMatMul(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { values: Float64Array; shape: number[] } {
  const [av, bv] = [a.dataSync(), b.dataSync()];
  const [ra, ca] = a.shape.slice(-2);
  const [rb, cb] = b.shape.slice(-2);
  const [M, K] = ta ? [ca, ra] : [ra, ca];
  const N = tb ? rb : cb;
  const rank = Math.max(a.rank, b.rank) - 2;
  const pad = (t: tf.Tensor) => [...Array<number>(rank - (t.rank - 2)).fill(1), ...t.shape.slice(0, -2)];
  const [ba, bb] = [pad(a), pad(b)];
  const outer = ba.map((s, i) => Math.max(s, bb[i]));
  const G = outer.reduce((x, y) => x * y, 1);
  const values = new Float64Array(G * M * N);
  let g = 0;
  for (const idx of indices(outer)) {
    const matrix = (shape: number[]) => idx.reduce((o, v, i) => o * shape[i] + (shape[i] === 1 ? 0 : v), 0);
    const oa = matrix(ba) * ra * ca;
    const ob = matrix(bb) * rb * cb;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += av[oa + (ta ? k * ca + i : i * ca + k)] * bv[ob + (tb ? j * cb + k : k * cb + j)];
        values[(g * M + i) * N + j] = s;
      }
    }
    g++;
  }
  return { values, shape: [...outer, M, N] };
}

describe('kernels on the SIMD loops (src/backend/simd.ts)', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  it('runs the binaries assembled from the committed WebAssembly text', async () => {
    for (const { wat, wasm, fused } of WAT_SOURCES) {
      const text = readFileSync(wat, 'utf8');
      const built = await assembleWat(text, wat);
      expect(Buffer.from(built).equals(readFileSync(wasm)), `${wasm} is stale: run npm run build:wasm`).toBe(true);
      const builtFused = await assembleWat(fuseMultiplyAdds(text), wat, true);
      expect(Buffer.from(builtFused).equals(readFileSync(fused)), `${fused} is stale: run npm run build:wasm`).toBe(true);
    }
  });

  it('fuses each multiply-then-add, nested operands included, and nothing else', () => {
    const text = '(local.set $c (f32x4.add (local.get $c) (f32x4.mul (f32x4.splat (f32.load (local.get $p))) (v128.load offset=16 (local.get $q)))))';
    expect(fuseMultiplyAdds(text)).toBe('(local.set $c (f32x4.relaxed_madd (f32x4.splat (f32.load (local.get $p))) (v128.load offset=16 (local.get $q)) (local.get $c)))');
    const plain = '(f32x4.add (local.get $a) (local.get $b)) (f32x4.mul (local.get $a) (local.get $b))';
    expect(fuseMultiplyAdds(plain)).toBe(plain);
    const loops = readFileSync(WAT_SOURCES[0].wat, 'utf8');
    const fused = fuseMultiplyAdds(loops);
    expect(fused.match(/relaxed_madd/g)?.length).toBe(loops.match(/f32x4\.mul/g)?.length);
    expect(fused).not.toContain('f32x4.mul');
  });

  it('loads the fused build where the runtime runs relaxed SIMD, the plain one with CIRCUITRY_FMA=0', () => {
    const given = process.env.CIRCUITRY_FMA;
    try {
      delete process.env.CIRCUITRY_FMA;
      const fused = simdLoopsCode();
      // Node 20 runs it behind a V8 flag that simdLoopsCode sets; later versions ship it
      expect(fused.fused).toBe(true);
      expect(Buffer.from(fused.code).equals(readFileSync(WAT_SOURCES[0].fused))).toBe(true);
      process.env.CIRCUITRY_FMA = '0';
      const plain = simdLoopsCode();
      expect(plain.fused).toBe(false);
      expect(Buffer.from(plain.code).equals(readFileSync(WAT_SOURCES[0].wasm))).toBe(true);
    } finally {
      if (given === undefined) delete process.env.CIRCUITRY_FMA;
      else process.env.CIRCUITRY_FMA = given;
    }
  });

  it.each([
    { a: [6, 16, 64], b: [6, 64, 16], ta: false, tb: false }, // sixteen-column blocks
    { a: [6, 16, 64], b: [6, 16, 64], ta: false, tb: true }, // attention scores: q k^T
    { a: [2, 3, 16, 16], b: [2, 3, 16, 64], ta: false, tb: false }, // pattern · v, rank 4
    { a: [2, 3, 16, 16], b: [2, 3, 16, 64], ta: true, tb: false }, // its gradient for v
    { a: [5, 15, 13], b: [5, 13, 23], ta: false, tb: false }, // N = 16 + 4 + 3: every column path
    { a: [5, 15, 7], b: [5, 23, 7], ta: false, tb: true }, // K and N not multiples of 4
    { a: [5, 13, 15], b: [5, 13, 6], ta: true, tb: false },
    { a: [3, 1, 1], b: [3, 1, 1], ta: false, tb: true }, // 1 × 1
    { a: [4, 9, 5], b: [5, 6], ta: false, tb: false }, // one B for every matrix of A
    { a: [5, 7], b: [2, 2, 5, 3], ta: true, tb: false }, // one A for every matrix of B
    { a: [4, 9, 5], b: [1, 6, 5], ta: false, tb: true },
    { a: [3, 4, 6], b: [3, 5, 4], ta: true, tb: true }, // both transposed: wasm's own kernel
    { a: [4, 1, 9, 5], b: [4, 3, 5, 6], ta: false, tb: false }, // one input per head times its three matrices
    { a: [2, 3, 9, 5], b: [1, 3, 9, 6], ta: true, tb: false }, // axes broadcast on either side
    { a: [2, 1, 9, 5], b: [1, 3, 6, 5], ta: false, tb: true },
    // single products: the loops (no XNNPACK cache of packed weights), transposed A excepted
    { a: [9, 33], b: [33, 40], ta: false, tb: false }, // odd M; N = 32 + 8
    { a: [40, 20], b: [20, 7], ta: false, tb: false },
    { a: [6, 10], b: [12, 10], ta: false, tb: true },
    { a: [10, 6], b: [10, 12], ta: true, tb: false }, // XNNPACK
  ])('multiplies $a × $b (transposeA $ta, transposeB $tb) as index arithmetic does', ({ a, b, ta, tb }) => {
    const [x, y] = [noise(a, 1), noise(b, 2)];
    const z = tf.matMul(x, y, ta, tb);
    const want = referenceMatMul(x, y, ta, tb);
    expect(z.shape).toEqual(want.shape);
    expect(simdLoaded()).toBe(true);
    const got = z.dataSync();
    want.values.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    tf.dispose([x, y, z]);
  });

  // rows of K ≥ 256 with a transposed B go to gemm_nt, one matrix too, in blocks of 32 rows of B
  it.each([
    { a: [9, 300], b: [70, 300] }, // one matrix; N over three blocks with a ragged end
    { a: [3, 5, 260], b: [3, 37, 260] }, // a batch on both sides
    { a: [2, 5, 300], b: [33, 300] }, // one B for every matrix of A (the backward pass's dy·Wᵀ)
    { a: [1, 3, 257], b: [1, 4, 257] },
  ])('multiplies long rows $a × $b transposed as index arithmetic does', ({ a, b }) => {
    const [x, y] = [noise(a, 8), noise(b, 9)];
    const z = tf.matMul(x, y, false, true);
    const want = referenceMatMul(x, y, false, true);
    expect(z.shape).toEqual(want.shape);
    const got = z.dataSync();
    want.values.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 4));
    tf.dispose([x, y, z]);
  });

  it('gives the gradients of a batched product that index arithmetic gives', () => {
    const [x, y, w] = [noise([3, 5, 7], 3), noise([3, 6, 7], 4), noise([3, 5, 6], 5)];
    // d/dx Σ w ∘ (x y^T) = w y and d/dy = w^T x
    const [gx, gy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(w, tf.matMul(p, q, false, true))))([x, y]);
    const wantX = referenceMatMul(w, y, false, false);
    const wantY = referenceMatMul(w, x, true, false);
    Array.from(gx.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(wantX.values[i], 5));
    Array.from(gy.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(wantY.values[i], 5));
    tf.dispose([x, y, w, gx, gy]);
  });

  it('leaves the operands as they were and allocates one output', () => {
    const [x, y] = [noise([4, 8, 16], 6), noise([4, 16, 8], 7)];
    const [xs, ys] = [Array.from(x.dataSync()), Array.from(y.dataSync())];
    const before = tf.memory().numTensors;
    const z = tf.matMul(x, y);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(Array.from(x.dataSync())).toEqual(xs);
    expect(Array.from(y.dataSync())).toEqual(ys);
    tf.dispose([x, y, z]);
  });
});

describe('row moments', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  it.each([[3, 768], [2, 5, 13], [4, 1], [6, 8], [1, 0]])('gives the mean and mean square over the last axis of %j, and their gradient', (...shape) => {
    const x = noise(shape, 8);
    const [mean, msq] = rowMoments(x);
    const d = shape[shape.length - 1];
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    expect(mean.shape).toEqual([...shape.slice(0, -1), 1]);
    const xs = x.dataSync();
    const [ms, qs] = [mean.dataSync(), msq.dataSync()];
    for (let r = 0; r < rows && d > 0; r++) {
      const row = Array.from(xs.subarray(r * d, (r + 1) * d));
      expect(ms[r]).toBeCloseTo(row.reduce((a, v) => a + v, 0) / d, 6);
      expect(qs[r]).toBeCloseTo(row.reduce((a, v) => a + v * v, 0) / d, 6);
    }
    if (d > 0) {
      // d/dx Σ (u·mean + w·msq) = u/d + 2x·w/d for per-row weights u, w
      const [u, w] = [noise(mean.shape, 9), noise(mean.shape, 10)];
      const g = tf.grad((t: tf.Tensor) => {
        const [m, q] = rowMoments(t);
        return tf.add(tf.sum(tf.mul(u, m)), tf.sum(tf.mul(w, q)));
      })(x);
      const [us, ws, gs] = [u.dataSync(), w.dataSync(), g.dataSync()];
      for (let i = 0; i < xs.length; i++) expect(gs[i]).toBeCloseTo(us[Math.floor(i / d)] / d + (2 * xs[i] * ws[Math.floor(i / d)]) / d, 6);
      // a gradient through the mean alone (the mean square's comes back empty)
      const gm = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(u, rowMoments(t)[0])))(x).dataSync();
      for (let i = 0; i < xs.length; i++) expect(gm[i]).toBeCloseTo(us[Math.floor(i / d)] / d, 6);
      tf.dispose([u, w, g]);
    }
    tf.dispose([x, mean, msq]);
  });
});

describe('RowBuffer', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  it('appends differences and mixes any range of rows, with the base on the first rows only', () => {
    // J = 8·2 + 3 and R = 4 + 2: every tile and remainder path of the loop
    const [K, J, cap] = [2, 19, 7];
    const buffer = new RowBuffer(K, cap, J);
    const shared = noise([5, J], 11); // the same rows for every copy
    const perCopy = noise([K, 3, J], 12);
    const zero = tf.zeros([K, 4, J]);
    buffer.appendDifference(shared, 1, perCopy, 0, 3); // rows 0..2: shared[1..3] − perCopy[k]
    buffer.appendDifference(perCopy, 1, zero, 0, 2); // rows 3..4: perCopy[k][1..2]
    expect(buffer.length).toBe(5);
    const [sv, pv] = [shared.dataSync(), perCopy.dataSync()];
    const row = (k: number, s: number, j: number) => (s < 3 ? sv[(1 + s) * J + j] - pv[(k * 3 + s) * J + j] : pv[(k * 3 + s - 2) * J + j]);
    const R = 6;
    for (const [s0, s1, based] of [[0, 5, 4], [2, 5, 0], [1, 1, 6], [0, 5, 6]] as const) {
      const coef = noise([K, R, s1 - s0], 13 + s0);
      const base = noise([K, J], 14);
      const out = buffer.mix(coef, s0, s1, based > 0 ? base : undefined, based);
      expect(out.shape).toEqual([R, K, J]);
      const [cv, bv, ov] = [coef.dataSync(), base.dataSync(), out.dataSync()];
      for (let r = 0; r < R; r++) {
        for (let k = 0; k < K; k++) {
          for (let j = 0; j < J; j++) {
            let want = r < based ? bv[k * J + j] : 0;
            for (let s = s0; s < s1; s++) want += cv[(k * R + r) * (s1 - s0) + s - s0] * row(k, s, j);
            expect(ov[(r * K + k) * J + j]).toBeCloseTo(want, 5);
          }
        }
      }
      tf.dispose([coef, base, out]);
    }
    expect(() => buffer.appendDifference(shared, 0, zero, 0, 3)).toThrow(/exceed the capacity 7/);
    expect(() => buffer.mix(tf.zeros([K, 1, 6]), 0, 6)).toThrow(/rows \[0, 6\) of 5/);
    expect(() => buffer.appendDifference(shared, 4, zero, 0, 2)).toThrow(/rows \[4, 6\) of \[5,19\]/);
    tf.dispose([shared, perCopy, zero]);
    buffer.dispose();
  });

  it('appends rows as they are to a single copy', () => {
    const J = 19;
    const buffer = new RowBuffer(1, 5, J);
    const x = noise([4, J], 15);
    buffer.append(x, 1, 3); // rows 0..2: x[1..3]
    buffer.append(x, 0, 1); // row 3: x[0]
    expect(buffer.length).toBe(4);
    const [xv, bv] = [x.dataSync(), buffer.tensor.dataSync()];
    for (const [row, from] of [[0, 1], [1, 2], [2, 3], [3, 0]]) expect(Array.from(bv.slice(row * J, (row + 1) * J))).toEqual(Array.from(xv.slice(from * J, (from + 1) * J)));
    expect(() => buffer.append(x, 0, 2)).toThrow(/exceed the capacity 5/);
    expect(() => buffer.append(x, 3, 2)).toThrow(/rows \[3, 5\) of \[4,19\]/);
    const two = new RowBuffer(2, 3, J);
    expect(() => two.append(x, 0, 1)).toThrow(/in 2 copies/);
    tf.dispose([x]);
    buffer.dispose();
    two.dispose();
  });
});

describe('columnDifference', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  it('subtracts a range of columns of one matrix from a range of another, as index arithmetic does', () => {
    const [x, y] = [noise([3, 11], 31) as tf.Tensor2D, noise([3, 9], 32) as tf.Tensor2D];
    const d = columnDifference(x, 4, y, 2, 6);
    expect(d.shape).toEqual([3, 6]);
    const [xv, yv, dv] = [x.dataSync(), y.dataSync(), d.dataSync()];
    for (let r = 0; r < 3; r++) for (let j = 0; j < 6; j++) expect(dv[r * 6 + j]).toBe(Math.fround(xv[r * 11 + 4 + j] - yv[r * 9 + 2 + j]));
    expect(() => columnDifference(x, 8, y, 0, 6)).toThrow(/columns \[8, 14\) of \[3,11\]/);
    tf.dispose([x, y, d]);
  });
});

describe('productNT (A·Bᵀ of long rows)', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  // K over several blocks of 512 with a ragged end; odd M and N not a multiple of 4: every tile edge
  it.each([
    { rows: 7, m: 5, N: 7, K: 1283 },
    { rows: 6, m: 6, N: 75, K: 600 }, // N over several blocks of 32 rows
    { rows: 4, m: 4, N: 4, K: 8 },
    { rows: 3, m: 1, N: 1, K: 3 },
    { rows: 2, m: 0, N: 3, K: 5 },
  ])('multiplies rows [0, $m) of [$rows, $K] by the transpose of [$N, $K] as index arithmetic does', ({ rows, m, N, K }) => {
    const [a, b] = [noise([rows, K], 21) as tf.Tensor2D, noise([N, K], 22) as tf.Tensor2D];
    const [av, bv] = [a.dataSync(), b.dataSync()];
    const before = tf.memory().numTensors;
    const got = productNT(a, m, b);
    expect(tf.memory().numTensors).toBe(before);
    expect(got.length).toBe(m * N);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < N; j++) {
        let want = 0;
        for (let k = 0; k < K; k++) want += av[i * K + k] * bv[j * K + k];
        expect(got[i * N + j]).toBeCloseTo(want, 3);
      }
    }
    tf.dispose([a, b]);
  });
});

describe('RowsWeight (a frozen W held as the rows of Wᵀ: the unembedding as W_E)', () => {
  beforeAll(async () => {
    expect(await initBackend('wasm')).toBe('wasm');
  });

  // k = 300 runs x·rowsᵀ on gemm_nt; k = 20 through the transpose materialised once
  it.each([{ k: 300 }, { k: 20 }])('gives x·W and the gradient dy·Wᵀ that index arithmetic gives (rows of $k)', ({ k }) => {
    const rows = noise([45, k], 10);
    const w = new RowsWeight(tf.keep(rows), true);
    const [x, dy] = [noise([6, k], 11) as tf.Tensor2D, noise([6, 45], 12)];
    const y = w.product(x);
    const want = referenceMatMul(x, rows, false, true);
    expect(y.shape).toEqual(want.shape);
    Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want.values[i], 4));
    const gx = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(dy, w.product(p as tf.Tensor2D))))(x);
    const wantX = referenceMatMul(dy, rows, false, false);
    Array.from(gx.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(wantX.values[i], 4));
    w.dispose();
    expect(rows.isDisposed).toBe(true);
    tf.dispose([x, dy, y, gx]);
  });
});
