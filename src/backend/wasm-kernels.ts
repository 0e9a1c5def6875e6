import * as tf from '@tensorflow/tfjs';

/**
 * Kernel replacements for tfjs-backend-wasm 4.22. Its Slice kernel reads the whole input out of
 * the wasm heap (a copy) before taking the slice, so slicing one head out of a [H, N, d] tensor
 * costs as much as copying all of it (measured: 20 ms for a 393 KB slice of a 4.7 MB tensor,
 * against 1 ms for an add of the slice's size), and Unpack slices the same way. These read
 * through a view of the heap.
 */
interface WasmBackend {
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
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

function sliceInto(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[], outShape: number[]): tf.TensorInfo {
  // the output first: allocating may grow the heap, which detaches earlier views
  const out = backend.makeOutput(outShape, x.dtype);
  const xs = backend.typedArrayFromHeap(x);
  const os = backend.typedArrayFromHeap(out);
  const shape = x.shape;
  const rank = shape.length;
  const strides = tf.util.computeStrides(shape);
  const inner = rank === 0 ? 1 : size[rank - 1];
  const rows = tf.util.sizeFromShape(size) / Math.max(1, inner);
  // copy contiguous runs along the last axis; iterate the outer indices like an odometer
  const idx = new Array<number>(Math.max(0, rank - 1)).fill(0);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let offset = rank === 0 ? 0 : begin[rank - 1];
    for (let a = 0; a < rank - 1; a++) offset += (begin[a] + idx[a]) * strides[a];
    os.set(xs.subarray(offset, offset + inner), o);
    o += inner;
    for (let a = rank - 2; a >= 0; a--) {
      if (++idx[a] < size[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

let patched = false;

/** Installs the replacements (once per process); call after the wasm backend is active. */
export function patchWasmKernels(): void {
  if (patched) return;
  patched = true;
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc: fastSlice as unknown as tf.KernelFunc });
  tf.unregisterKernel('Unpack', 'wasm');
  tf.registerKernel({ kernelName: 'Unpack', backendName: 'wasm', kernelFunc: fastUnpack as unknown as tf.KernelFunc });
}
