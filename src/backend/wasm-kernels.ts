import * as tf from '@tensorflow/tfjs';
import { registerSimdKernels } from './simd.js';

/**
 * Kernel replacements for tfjs-backend-wasm 4.22. Its Slice kernel reads the whole input out of
 * the wasm heap (a copy) before taking the slice, so slicing one head out of a [H, N, d] tensor
 * costs as much as copying all of it (measured: 20 ms for a 393 KB slice of a 4.7 MB tensor,
 * against 1 ms for an add of the slice's size), and Unpack slices the same way. These read
 * through a view of the heap, and so does SplitV, which calls that Slice. Its Concat copies each row of each input with a fresh subarray,
 * which along the last axis of a tall tensor (the patching engine's [B·p·d, sources]) is ~10x
 * slower than a plain loop. Short runs are copied element by element here, long ones by PadV2.
 */
interface WasmBackend {
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  incRef(dataId: tf.DataId): void;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

function fastSlice(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x!;
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs!.begin as number[], args.attrs!.size as number[]);
  return sliceInto(args.backend as WasmBackend, x, begin, size, size);
}

/** Unpack (tf.unstack) as slices through heap views. */
function fastUnpack(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.value!;
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
  const outShape = x.shape.filter((_, i) => i !== axis);
  return Array.from({ length: x.shape[axis] }, (_, i) => {
    const begin = x.shape.map((_, a) => (a === axis ? i : 0));
    const size = x.shape.map((s, a) => (a === axis ? 1 : s));
    return sliceInto(args.backend as WasmBackend, x, begin, size, outShape);
  });
}

/** SplitV (tf.split) as slices through heap views (the wasm one calls its own slow Slice). */
function fastSplitV(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.x!;
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, args.attrs!.numOrSizeSplits as number | number[], axis);
  const begin = x.shape.map(() => 0);
  return sizes.map((n) => {
    const size = x.shape.map((s, a) => (a === axis ? n : s));
    const out = sliceInto(args.backend as WasmBackend, x, [...begin], size, size);
    begin[axis] += n;
    return out;
  });
}

/**
 * GatherV2 (tf.gather) copying whole rows through heap views; the wasm kernel took ~15 ms to
 * gather 8 rows of 29k floats. Batched gathers (batchDims > 0) keep the original kernel.
 */
function fastGather(original: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    if ((args.attrs!.batchDims as number) !== 0 || x.dtype === 'string') return original(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const backend = args.backend as WasmBackend;
    const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
    const n = tf.util.sizeFromShape(indices.shape);
    const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    const out = backend.makeOutput(outShape, x.dtype);
    const xs = backend.typedArrayFromHeap(x);
    const idx = backend.typedArrayFromHeap(indices);
    const os = backend.typedArrayFromHeap(out);
    const dim = x.shape[axis];
    const inner = tf.util.sizeFromShape(x.shape.slice(axis + 1));
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axis));
    for (let i = 0; i < n; i++) {
      if (!(idx[i] >= 0 && idx[i] < dim)) throw new Error(`GatherV2: the index value ${idx[i]} is not in [0, ${dim - 1}]`);
    }
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < n; i++) copyRun(os, (o * n + i) * inner, xs, (o * dim + idx[i]) * inner, inner);
    }
    return out;
  };
}

function sliceInto(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[], outShape: number[]): tf.TensorInfo {
  // the output first: allocating may grow the heap, which detaches earlier views
  const out = backend.makeOutput(outShape, x.dtype);
  const xs = backend.typedArrayFromHeap(x);
  const os = backend.typedArrayFromHeap(out);
  const shape = x.shape;
  const strides = tf.util.computeStrides(shape);
  // trailing axes taken whole are one contiguous run with the axis before them: copy such runs
  let k = shape.length; // axes [k, rank) are whole
  while (k > 0 && size[k - 1] === shape[k - 1]) k--;
  const outer = Math.max(0, k - 1); // axes [0, outer) are iterated
  const inner = tf.util.sizeFromShape(size.slice(outer));
  const rows = tf.util.sizeFromShape(size.slice(0, outer));
  const idx = new Array<number>(outer).fill(0);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let offset = outer < shape.length ? begin[outer] * (strides[outer] ?? 1) : 0;
    for (let a = 0; a < outer; a++) offset += (begin[a] + idx[a]) * strides[a];
    copyRun(os, o, xs, offset, inner);
    o += inner;
    for (let a = outer - 1; a >= 0; a--) {
      if (++idx[a] < size[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

type Numeric = Float32Array | Int32Array | Uint8Array;

/** dst[o, o + n) = src[s, s + n): a loop for short runs (no subarray to allocate), else set(). */
function copyRun(dst: Numeric, o: number, src: Numeric, s: number, n: number): void {
  if (n < 64) {
    for (let j = 0; j < n; j++) dst[o + j] = src[s + j];
  } else {
    dst.set(src.subarray(s, s + n), o);
  }
}

/**
 * Concat. When the first input's rows are long (≥ 64 elements: the engine's growing difference
 * tensor), wasm's own PadV2 copies it into the output with room for the rest (a C++ row copy,
 * ~2x faster than one from JS), and the other inputs' runs are written into that room.
 */
function fastConcat(original: tf.KernelFunc, pad: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    if (inputs[0].dtype === 'string' || inputs.length < 2) return original(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const backend = args.backend as WasmBackend;
    const axis = tf.util.parseAxisParam(args.attrs!.axis as number, inputs[0].shape)[0];
    const outShape = inputs[0].shape.map((s, a) => (a === axis ? inputs.reduce((n, t) => n + t.shape[a], 0) : s));
    const inner = inputs.map((t) => tf.util.sizeFromShape(t.shape.slice(axis)));
    const total = inner.reduce((a, b) => a + b, 0);
    const rows = tf.util.sizeFromShape(inputs[0].shape.slice(0, axis));
    const viaPad = inner[0] >= 64 && rows > 1;
    const paddings = outShape.map((s, a) => [0, s - inputs[0].shape[a]]);
    const out = viaPad
      ? (pad({ inputs: { x: inputs[0] }, backend: args.backend, attrs: { paddings, constantValue: 0 } } as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo)
      : backend.makeOutput(outShape, inputs[0].dtype);
    // views after the output is allocated: allocating may grow the heap, which detaches views
    const os = backend.typedArrayFromHeap(out);
    for (let i = viaPad ? 1 : 0, col = viaPad ? inner[0] : 0; i < inputs.length; col += inner[i], i++) {
      const n = inner[i];
      const xs = backend.typedArrayFromHeap(inputs[i]);
      if (n < 64) {
        // inline: a call per short run costs more than the copy
        for (let r = 0, o = col, from = 0; r < rows; r++, o += total) for (let j = 0; j < n; j++) os[o + j] = xs[from++];
      } else for (let r = 0; r < rows; r++) copyRun(os, r * total + col, xs, r * n, n);
    }
    return out;
  };
}

/**
 * Transpose keeping trailing axes in place (perm ends with k, k+1, …, rank−1) and moving runs of
 * at least 64 elements: a loop of contiguous copies. wasm's kernel moves element by element:
 * [128, 36, 768] → [36, 128, 768] took 15 ms, against ~2 ms here. Other permutations keep it.
 */
function fastTranspose(original: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const x = args.inputs.x!;
    const perm = args.attrs!.perm as number[];
    const rank = x.shape.length;
    let k = rank; // axes [k, rank) stay where they are
    while (k > 0 && perm[k - 1] === k - 1) k--;
    const run = tf.util.sizeFromShape(x.shape.slice(k));
    if (k === 0 || k === rank || run < 64 || x.dtype === 'string') return original(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const backend = args.backend as WasmBackend;
    const outShape = perm.map((a) => x.shape[a]);
    const out = backend.makeOutput(outShape, x.dtype);
    const xs = backend.typedArrayFromHeap(x);
    const os = backend.typedArrayFromHeap(out);
    const strides = tf.util.computeStrides(x.shape);
    const outer = outShape.slice(0, k);
    const step = perm.slice(0, k).map((a) => strides[a]); // input offset step of each output axis
    const idx = new Array<number>(k).fill(0);
    const rows = tf.util.sizeFromShape(outer);
    let from = 0;
    for (let r = 0; r < rows; r++) {
      copyRun(os, r * run, xs, from, run);
      for (let a = k - 1; a >= 0; a--) {
        from += step[a];
        if (++idx[a] < outer[a]) break;
        from -= step[a] * outer[a];
        idx[a] = 0;
      }
    }
    return out;
  };
}

/**
 * Identity (tf.clone, and every tensor the autodiff tape saves for the backward pass) sharing
 * the input's data, as Reshape does and as the cpu backend's Identity does: tensors are
 * immutable. wasm's kernel copies, which under a gradient tape copied the whole embedding
 * matrix (154 MB at GPT-2's vocabulary) and every saved activation on each pass.
 */
function sharedIdentity(original: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const x = args.inputs.x!;
    if (x.dtype === 'string') return original(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

let patched = false;

/** Installs the replacements (once per process); call after the wasm backend is active. `simdCode`: see registerSimdKernels. */
export function patchWasmKernels(simdCode?: Uint8Array<ArrayBuffer>): void {
  if (patched) return;
  patched = true;
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc: fastSlice as unknown as tf.KernelFunc });
  const concat = tf.getKernel('Concat', 'wasm')!.kernelFunc;
  tf.unregisterKernel('Concat', 'wasm');
  tf.registerKernel({ kernelName: 'Concat', backendName: 'wasm', kernelFunc: fastConcat(concat, tf.getKernel('PadV2', 'wasm')!.kernelFunc) as unknown as tf.KernelFunc });
  const gather = tf.getKernel('GatherV2', 'wasm')!.kernelFunc;
  tf.unregisterKernel('GatherV2', 'wasm');
  tf.registerKernel({ kernelName: 'GatherV2', backendName: 'wasm', kernelFunc: fastGather(gather) as unknown as tf.KernelFunc });
  tf.unregisterKernel('SplitV', 'wasm');
  tf.registerKernel({ kernelName: 'SplitV', backendName: 'wasm', kernelFunc: fastSplitV as unknown as tf.KernelFunc });
  const transpose = tf.getKernel('Transpose', 'wasm')!.kernelFunc;
  tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({ kernelName: 'Transpose', backendName: 'wasm', kernelFunc: fastTranspose(transpose) as unknown as tf.KernelFunc });
  const identity = tf.getKernel('Identity', 'wasm')!.kernelFunc;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ kernelName: 'Identity', backendName: 'wasm', kernelFunc: sharedIdentity(identity) as unknown as tf.KernelFunc });
  tf.unregisterKernel('Unpack', 'wasm');
  tf.registerKernel({ kernelName: 'Unpack', backendName: 'wasm', kernelFunc: fastUnpack as unknown as tf.KernelFunc });
  registerSimdKernels(simdCode);
}
