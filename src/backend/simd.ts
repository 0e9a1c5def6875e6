import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';

/**
 * Kernels for tfjs-backend-wasm that run hand-written SIMD loops (simd/loops.wat) on the
 * backend's own heap, where tfjs-backend-wasm 4.22 is slow:
 * - BatchMatMul. wasm runs batched products (G > 1 matrices: attention's [b, H, p, dh] scores and
 *   mixes, and their gradients) through a scalar fallback at ~1 GFLOP/s; the loops run them 5–11x
 *   faster (measured on [96, 16, 64] × [96, 64, 16] and the like). Single products run on the
 *   loops too, as fast as XNNPACK's (both ~20 GFLOP/s on one core for [112, 768] × [768, 3072],
 *   `npm run bench matmul`) but without its cache: XNNPACK keeps a packed copy of every B it has
 *   multiplied (each weight matrix) for as long as B lives, a second copy of the model's weights
 *   (about 500 MB of heap per worker on GPT-2 small, with the fragmentation it causes). XNNPACK
 *   keeps a transposed A alone (the weight gradients of training, whose B is a fresh activation)
 *   and the cases the loops do not cover (both operands transposed, other dtypes, batch shapes
 *   of different ranks that broadcast other than as a whole). Batch axes that broadcast one
 *   against the other ([H, 1] against [H, 3]) run a product per matrix.
 * - RowMoments: the mean and the mean square over the last axis in one read, for the LayerNorm
 *   statistics of the masked engine's per-head inputs ([b·p, R, d]), where Mean, Square and Mean
 *   again read the tensor three times.
 * - RowBuffer: the masked engine's source differences, one row per source, appended in place and
 *   mixed into receiver inputs (see the class).
 * - productNT: A·Bᵀ of few long rows (EAP's contraction), in cache-sized blocks of the rows.
 */

interface HeapBackend {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

interface Loops {
  /** (a, b, c, w, G, M, K, N, ag, ai, ak, bg, bk); w: K × 64 bytes of scratch */
  mm_nn(...args: number[]): void;
  /** (a, b, c, G, M, K, N, ag, ai, bg, bj) */
  mm_nt(...args: number[]): void;
  /** (x, R, d, mean, msq) */
  row_moments(...args: number[]): void;
  /** (a, as, b, bs, c, cs, base, R, S, J, nb) */
  mix(...args: number[]): void;
  /** (d, x, y, n): d = x − y */
  sub(...args: number[]): void;
  /** (d, x, y, n): d = x + y */
  add(...args: number[]): void;
  /** (a, as, b, bs, c, cs, M, N, K, kc) */
  gemm_nt(...args: number[]): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

const ROW_MOMENTS = 'CircuitryRowMoments';

let loops: Loops | undefined;

/** Whether the SIMD loops are loaded (after registerSimdKernels on a runtime with WebAssembly SIMD). */
export function simdLoaded(): boolean {
  return loops !== undefined;
}

/** Whether the SIMD loops serve the active backend. */
export function simdActive(): boolean {
  return loops !== undefined && tf.getBackend() === 'wasm';
}

const offset = (backend: HeapBackend, t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;

/** The batch size of a matrix operand's outer axes. */
const batchOf = (shape: number[]) => shape.slice(0, -2).reduce((a, b) => a * b, 1);

let xnnpackSingles = false;

/** Sends single products back to XNNPACK (true) or keeps them on the loops: for `npm run bench matmul`. */
export function singleProductsOnXnnpack(on: boolean): void {
  xnnpackSingles = on;
}

function batchMatMul(original: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const ta = args.attrs!.transposeA as boolean;
    const tb = args.attrs!.transposeB as boolean;
    const backend = args.backend as HeapBackend;
    const fallback = () => original(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || (ta && tb) || a.shape.length < 2 || b.shape.length < 2) return fallback();
    const [ga, gb] = [batchOf(a.shape), batchOf(b.shape)];
    const G = Math.max(ga, gb);
    const [big, small] = ga >= gb ? [a, b] : [b, a];
    // the same batch on both sides, or one side's single matrix for the whole batch
    const same = ga === gb && a.shape.length === b.shape.length && a.shape.slice(0, -2).every((s, i) => s === b.shape[i]);
    const single = Math.min(ga, gb) === 1 && small.shape.length <= big.shape.length;
    const broadcast = !same && !single ? broadcastBatches(a.shape, b.shape) : undefined;
    if (!(same || single || broadcast)) return fallback();
    const [ra, ca] = a.shape.slice(-2);
    const [rb, cb] = b.shape.slice(-2);
    const [M, K] = ta ? [ca, ra] : [ra, ca];
    const [K2, N] = tb ? [cb, rb] : [rb, cb];
    if (K !== K2 || K === 0 || M === 0 || N === 0) return fallback();
    // A·Bᵀ with long rows (the backward pass's dy·Wᵀ, the unembedding against W_E): gemm_nt, even
    // for one matrix, where XNNPACK's transposed operand runs ~10x slower than its plain product
    const longRows = tb && !ta && K >= GEMM_NT_MIN_K;
    if (G === 1 && (ta || xnnpackSingles) && !longRows) return fallback();
    if (broadcast) {
      // batch axes of size 1 on one side repeat that side's matrix: one product per output matrix
      const out = backend.makeOutput([...broadcast.shape, M, N], 'float32');
      const [pa, pb, pc] = [offset(backend, a), offset(backend, b), offset(backend, out)];
      withPanel(backend, K, (w) =>
        broadcast.pairs.forEach(([ia, ib], g) => {
          const [qa, qb, qc] = [pa + 4 * ia * M * K, pb + 4 * ib * K * N, pc + 4 * g * M * N];
          if (longRows) gemmNT(qa, K, qb, K, qc, N, M, N, K);
          else if (tb) loops!.mm_nt(qa, qb, qc, 1, M, K, N, 0, K, 0, K);
          else loops!.mm_nn(qa, qb, qc, w, 1, M, K, N, 0, ta ? 1 : K, ta ? M : 1, 0, N);
        }),
      );
      return out;
    }
    const out = backend.makeOutput([...big.shape.slice(0, -2), M, N], 'float32');
    const [pa, pb, pc] = [offset(backend, a), offset(backend, b), offset(backend, out)];
    const ag = ga === 1 ? 0 : M * K;
    const bg = gb === 1 ? 0 : K * N;
    if (longRows) for (let g = 0; g < G; g++) gemmNT(pa + 4 * g * ag, K, pb + 4 * g * bg, K, pc + 4 * g * M * N, N, M, N, K);
    else if (tb) loops!.mm_nt(pa, pb, pc, G, M, K, N, ag, K, bg, K);
    else withPanel(backend, K, (w) => loops!.mm_nn(pa, pb, pc, w, G, M, K, N, ag, ta ? 1 : K, ta ? M : 1, bg, N));
    return out;
  };
}

/** Runs f with the byte offset of K × 16 floats of scratch on the heap, for mm_nn's panels of B. */
function withPanel(backend: HeapBackend, K: number, f: (w: number) => void): void {
  const panel = backend.makeOutput([K * 16], 'float32');
  try {
    f(offset(backend, panel));
  } finally {
    backend.disposeData(panel.dataId);
  }
}

/**
 * Batch shapes of equal rank whose axes are equal or 1 on one side (e.g. [H, 1] against [H, 3]):
 * the output's batch shape, and for each output matrix the index of its A and its B matrix.
 */
function broadcastBatches(as: number[], bs: number[]): { shape: number[]; pairs: [number, number][] } | undefined {
  if (as.length !== bs.length) return undefined;
  const [ba, bb] = [as.slice(0, -2), bs.slice(0, -2)];
  if (!ba.every((s, i) => s === bb[i] || s === 1 || bb[i] === 1)) return undefined;
  const shape = ba.map((s, i) => Math.max(s, bb[i]));
  const pairs: [number, number][] = [];
  const index = shape.map(() => 0);
  for (let g = 0, G = batchOf([...shape, 1, 1]); g < G; g++) {
    let [ia, ib] = [0, 0];
    for (let i = 0; i < shape.length; i++) {
      ia = ia * ba[i] + (ba[i] === 1 ? 0 : index[i]);
      ib = ib * bb[i] + (bb[i] === 1 ? 0 : index[i]);
    }
    pairs.push([ia, ib]);
    for (let i = shape.length - 1; i >= 0 && ++index[i] === shape[i]; i--) index[i] = 0;
  }
  return { shape, pairs };
}

function rowMomentsKernel(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.x!;
  const backend = args.backend as HeapBackend;
  const d = x.shape[x.shape.length - 1];
  const shape = [...x.shape.slice(0, -1), 1];
  const [mean, msq] = [backend.makeOutput(shape, 'float32'), backend.makeOutput(shape, 'float32')];
  const rows = tf.util.sizeFromShape(shape);
  if (rows > 0) loops!.row_moments(offset(backend, x), rows, d, offset(backend, mean), offset(backend, msq));
  return [mean, msq];
}

/**
 * The mean and the mean square of x over its last axis, [..., d] → two [..., 1] (differentiable).
 * One read through the SIMD loops on wasm; tf.mean of x and of x² elsewhere.
 */
export function rowMoments(x: tf.Tensor): [tf.Tensor, tf.Tensor] {
  if (x.dtype === 'float32' && x.shape.length > 0 && x.shape[x.shape.length - 1] > 0 && tf.getKernel(ROW_MOMENTS, tf.getBackend()) !== undefined) {
    return tf.engine().runKernel(ROW_MOMENTS, { x }, {}) as unknown as [tf.Tensor, tf.Tensor];
  }
  return [tf.mean(x, -1, true), tf.mean(tf.square(x), -1, true)];
}

/** Floats of K per block of gemm_nt: a block of the operands' rows stays in cache (16 KiB for 2 + 4 rows of 512). */
const GEMM_NT_BLOCK = 512;
/** Rows of B per call of gemm_nt: their block of K (64 KiB) is read from cache by every pair of A's rows. */
const GEMM_NT_ROWS = 32;
/** The shortest rows that BatchMatMul with a transposed B sends to gemm_nt (below, mm_nt or XNNPACK do better). */
const GEMM_NT_MIN_K = 256;

/**
 * Whether tf.matMul(a, b, false, true) with rows of length K runs as fast as a product with a
 * materialised transpose (on gemm_nt), so the backward pass can skip holding Wᵀ beside W.
 */
export function transposedProductFast(K: number): boolean {
  return simdActive() && K >= GEMM_NT_MIN_K;
}

/** C = A·Bᵀ on the heap (byte offsets; row strides in floats), in column blocks of GEMM_NT_ROWS. */
function gemmNT(a: number, as: number, b: number, bs: number, c: number, cs: number, M: number, N: number, K: number): void {
  for (let j = 0; j < N; j += GEMM_NT_ROWS) loops!.gemm_nt(a, as, b + 4 * j * bs, bs, c + 4 * j, cs, M, Math.min(GEMM_NT_ROWS, N - j), K, GEMM_NT_BLOCK);
}

/**
 * a[:m] · bᵀ for a [≥ m, K] and b [N, K], on the host ([m, N], row-major): products of few long
 * rows (EAP's contraction of source differences with destination gradients, K = b·p·d), which
 * XNNPACK runs at ~1 GFLOP/s and the SIMD loops in cache-sized blocks of K. tf.matMul elsewhere.
 */
export function productNT(a: tf.Tensor2D, m: number, b: tf.Tensor2D): Float32Array {
  const [rows, K] = a.shape;
  const [N, K2] = b.shape;
  if (K !== K2 || m > rows || m < 0) throw new Error(`productNT: rows [0, ${m}) of [${a.shape}] times the transpose of [${b.shape}]`);
  if (m === 0 || N === 0) return new Float32Array(m * N);
  if (!simdActive() || a.dtype !== 'float32' || b.dtype !== 'float32' || K === 0) {
    const r = tf.tidy(() => tf.matMul(m < rows ? tf.slice(a, [0, 0], [m, K]) : a, b, false, true));
    const v = r.dataSync() as Float32Array;
    r.dispose();
    return v;
  }
  const backend = tf.backend() as unknown as HeapBackend;
  const out = tf.engine().makeTensorFromTensorInfo(backend.makeOutput([m, N], 'float32'));
  try {
    gemmNT(offset(backend, a), K, offset(backend, b), K, offset(backend, out), N, m, N, K);
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/**
 * x[:, xFrom : xFrom + n] − y[:, yFrom : yFrom + n] for x, y [rows, ·], as a new [rows, n]: one
 * pass over the columns wanted, where slicing both first would copy them twice more.
 */
export function columnDifference(x: tf.Tensor2D, xFrom: number, y: tf.Tensor2D, yFrom: number, n: number): tf.Tensor2D {
  const rows = x.shape[0];
  if (y.shape[0] !== rows || xFrom < 0 || yFrom < 0 || xFrom + n > x.shape[1] || yFrom + n > y.shape[1]) throw new Error(`columnDifference: columns [${xFrom}, ${xFrom + n}) of [${x.shape}] minus [${yFrom}, ${yFrom + n}) of [${y.shape}]`);
  if (!simdActive() || x.dtype !== 'float32' || y.dtype !== 'float32') return tf.tidy(() => tf.sub(tf.slice(x, [0, xFrom], [rows, n]), tf.slice(y, [0, yFrom], [rows, n])));
  const backend = tf.backend() as unknown as HeapBackend;
  const out = backend.makeOutput([rows, n], 'float32');
  const [px, py, pd] = [offset(backend, x), offset(backend, y), offset(backend, out)];
  for (let r = 0; r < rows; r++) loops!.sub(pd + 4 * r * n, px + 4 * (r * x.shape[1] + xFrom), py + 4 * (r * y.shape[1] + yFrom), n);
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D;
}

/**
 * Registers the kernels on the active wasm backend (once), when the runtime has WebAssembly SIMD.
 * `code` is loops.wasm's bytes where there is no file system (the live report's page); read
 * from next to this module otherwise.
 */
export function registerSimdKernels(code?: Uint8Array<ArrayBuffer>): void {
  if (loops) return;
  const bytes = code ?? readFileSync(new URL('./simd/loops.wasm', import.meta.url));
  if (!WebAssembly.validate(bytes)) return;
  const backend = tf.backend() as unknown as HeapBackend;
  loops = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: backend.wasm.asm.memory } }).exports as unknown as Loops;
  const matmul = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: batchMatMul(matmul) as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: ROW_MOMENTS, backendName: 'wasm', kernelFunc: rowMomentsKernel as unknown as tf.KernelFunc });
  // d mean/dx = 1/d, d msq/dx = 2x/d
  tf.registerGradient({
    kernelName: ROW_MOMENTS,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      const [dMean, dMsq] = dy as tf.Tensor[];
      const d = x.shape[x.shape.length - 1];
      return { x: () => tf.add(tf.div(dMean, d), tf.mul(x, tf.mul(dMsq, 2 / d))) };
    },
  });
}

/**
 * Rows [r0, r0 + R) of `out` ([≥ r0 + R, K, J]) for copies k ∈ [k0, k1): out[r0 + r, k] =
 * (r < based ? base[k] : 0) + Σ_s coef[k, r, s] · rows[firstRow(k) + s], coef [K, R, S], `rows`
 * a tensor of rows of J, base [K, J]. Sums run in s order.
 */
export function mixRows(out: tf.TensorInfo, r0: number, coef: tf.Tensor, rows: { tensor: tf.Tensor; firstRow: (k: number) => number }, base?: tf.Tensor, based = base ? coef.shape[1]! : 0, [k0, k1] = [0, coef.shape[0]!]): void {
  const [K, R, S] = coef.shape as [number, number, number];
  const J = rows.tensor.shape[rows.tensor.rank - 1]!;
  const [outRows, outK, outJ] = out.shape;
  const inside = (k: number) => rows.firstRow(k) >= 0 && (rows.firstRow(k) + S) * J <= rows.tensor.size;
  if (coef.rank !== 3 || outK !== K || outJ !== J || r0 + R > outRows || k0 < 0 || k1 > K || !inside(k0) || !inside(k1 - 1)) {
    throw new Error(`mixRows: coefficients [${coef.shape}] over rows of [${rows.tensor.shape}] into rows ${r0}… of [${out.shape}], copies [${k0}, ${k1})`);
  }
  if (base && base.size !== K * J) throw new Error(`mixRows: a base of ${base.size} floats, expected ${K} × ${J}`);
  const backend = tf.backend() as unknown as HeapBackend;
  const [pa, pb, pc, pbase] = [offset(backend, coef), offset(backend, rows.tensor), offset(backend, out), base ? offset(backend, base) : 0];
  for (let k = k0; k < k1; k++) {
    loops!.mix(pa + 4 * k * R * S, S, pb + 4 * rows.firstRow(k) * J, J, pc + 4 * (r0 * K + k) * J, K * J, pbase + 4 * k * J, R, S, J, base ? based : 0);
  }
}

/** Adds `rows` ([R, K, J]) onto rows [r0, r0 + R) of `out` ([≥ r0 + R, K, J]), in place. */
export function addRows(out: tf.TensorInfo, r0: number, rows: tf.Tensor): void {
  const [outRows, K, J] = out.shape;
  const R = rows.shape[0]!;
  if (rows.rank !== 3 || rows.shape[1] !== K || rows.shape[2] !== J || r0 < 0 || r0 + R > outRows) throw new Error(`addRows: [${rows.shape}] onto rows ${r0}… of [${out.shape}]`);
  const backend = tf.backend() as unknown as HeapBackend;
  const at = offset(backend, out) + 4 * r0 * K * J;
  loops!.add(at, at, offset(backend, rows), R * K * J);
}

/**
 * K copies of up to `capacity` rows of J floats, each row written once (appended), for the masked
 * engine's undifferentiated dense pass: rows are sources' differences, and `mix` forms receiver
 * inputs base + Σ_s coef[r, s] · row[s] straight from a range of rows. With tensors the rows would
 * be a tensor grown by concatenation (a copy of all of it per layer) and multiplied sources-last,
 * then transposed to receivers-first; here the growth is in place and the product comes out
 * receivers-first with the base added. Not differentiable: for passes without a gradient tape.
 */
export class RowBuffer {
  readonly tensor: tf.Tensor;
  private rows = 0;

  constructor(
    readonly K: number,
    readonly capacity: number,
    readonly J: number,
  ) {
    if (!loops) throw new Error('RowBuffer needs the SIMD loops (wasm backend)');
    const backend = tf.backend() as unknown as HeapBackend;
    // uninitialised: only rows below `length` are ever read
    this.tensor = tf.engine().makeTensorFromTensorInfo(backend.makeOutput([K, capacity, J], 'float32'));
  }

  /** Rows appended so far. */
  get length(): number {
    return this.rows;
  }

  /**
   * Appends n rows x − y to every copy, reading rows [xRow, xRow + n) of x and [yRow, yRow + n) of
   * y; an operand is [rows, J] (the same for every copy) or [K, rows, J].
   */
  appendDifference(x: tf.Tensor, xRow: number, y: tf.Tensor, yRow: number, n: number): void {
    const { K, J } = this;
    if (this.rows + n > this.capacity) throw new Error(`RowBuffer: ${this.rows} + ${n} rows exceed the capacity ${this.capacity}`);
    const backend = tf.backend() as unknown as HeapBackend;
    /** Byte offset of copy k's first row, for an operand of this buffer's layout. */
    const at = (t: tf.Tensor, row: number) => {
      const perCopy = t.rank === 3;
      const rows = t.shape[perCopy ? 1 : 0] ?? 0;
      if (t.shape[t.rank - 1] !== J || (perCopy && t.shape[0] !== K) || t.rank < 2 || t.rank > 3 || row < 0 || row + n > rows) {
        throw new Error(`RowBuffer: rows [${row}, ${row + n}) of [${t.shape}] for ${K} copies of ${J}`);
      }
      const first = offset(backend, t) + 4 * row * J;
      return (k: number) => first + (perCopy ? 4 * k * rows * J : 0);
    };
    const [px, py] = [at(x, xRow), at(y, yRow)];
    const pd = offset(backend, this.tensor);
    for (let k = 0; k < K; k++) loops!.sub(pd + 4 * (k * this.capacity + this.rows) * J, px(k), py(k), n * J);
    this.rows += n;
  }

  /**
   * Receiver inputs [R, K, J]: out[r, k] = (r < based ? base[k] : 0) + Σ_{s ∈ [s0, s1)} coef[k, r, s − s0] · row[k, s],
   * coef [K, R, s1 − s0]; base [K, J] (or absent: zeros).
   */
  mix(coef: tf.Tensor, s0: number, s1: number, base?: tf.Tensor, based = base ? coef.shape[1]! : 0): tf.Tensor {
    if (s1 > this.rows || s0 < 0 || coef.shape[2] !== s1 - s0) throw new Error(`RowBuffer.mix: coefficients [${coef.shape}] for rows [${s0}, ${s1}) of ${this.rows} in ${this.K} copies`);
    const backend = tf.backend() as unknown as HeapBackend;
    const out = backend.makeOutput([coef.shape[1]!, this.K, this.J], 'float32');
    mixRows(out, 0, coef, { tensor: this.tensor, firstRow: (k) => k * this.capacity + s0 }, base, based);
    return tf.engine().makeTensorFromTensorInfo(out);
  }

  /** Appends rows [xRow, xRow + n) of x ([rows, J]) to the single copy, as they are (a copy on the heap). */
  append(x: tf.Tensor, xRow: number, n: number): void {
    const { K, J } = this;
    if (K !== 1 || x.dtype !== 'float32' || x.shape[x.rank - 1] !== J || (xRow + n) * J > x.size) throw new Error(`RowBuffer.append: rows [${xRow}, ${xRow + n}) of [${x.shape}] to rows of ${J} in ${K} copies`);
    if (this.rows + n > this.capacity) throw new Error(`RowBuffer: ${this.rows} + ${n} rows exceed the capacity ${this.capacity}`);
    const backend = tf.backend() as unknown as HeapBackend;
    const heap = new Float32Array(backend.wasm.asm.memory.buffer);
    const from = offset(backend, x) / 4 + xRow * J;
    heap.copyWithin(offset(backend, this.tensor) / 4 + this.rows * J, from, from + n * J);
    this.rows += n;
  }

  dispose(): void {
    this.tensor.dispose();
  }
}
