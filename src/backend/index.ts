import * as tf from '@tensorflow/tfjs';
import { CircuitryError } from '../errors.js';
import { patchWasmKernels } from './wasm-kernels.js';
import { simdLoopsCode } from './simd-code.js';

/** Backends in the order tried when none is asked for. */
export const BACKEND_ORDER = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];

let active: BackendName | undefined;

function isBackendName(name: string): name is BackendName {
  return (BACKEND_ORDER as readonly string[]).includes(name);
}

async function tryLoad(name: BackendName): Promise<boolean> {
  try {
    if (name === 'tensorflow') {
      // optionalDependencies: present only where libtensorflow installed
      try {
        await import('@tensorflow/tfjs-node-gpu' as string);
      } catch {
        await import('@tensorflow/tfjs-node' as string);
      }
    } else if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
    }
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    if (ok && name === 'wasm') patchWasmKernels(simdLoopsCode().code);
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Selects the tensor backend once per process: the requested one (flag or CIRCUITRY_BACKEND),
 * else the first of BACKEND_ORDER that loads. Asking for a backend that cannot load is an error.
 */
export { CPU_BACKEND_WARNING } from './notes.js';

export async function initBackend(requested?: string): Promise<BackendName> {
  const want = requested ?? process.env.CIRCUITRY_BACKEND ?? undefined;
  if (want !== undefined && want !== '') {
    if (!isBackendName(want)) {
      throw new CircuitryError(`unknown backend '${want}' (from ${requested ? '--backend' : 'CIRCUITRY_BACKEND'}): expected one of ${BACKEND_ORDER.join(', ')}`);
    }
    if (active === want) return want;
    if (!(await tryLoad(want))) {
      const hint = want === 'tensorflow' ? ' (install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu, which need libtensorflow)' : '';
      throw new CircuitryError(`backend '${want}' could not be loaded${hint}`);
    }
    active = want;
    return want;
  }
  if (active) return active;
  for (const name of BACKEND_ORDER) {
    if (await tryLoad(name)) {
      active = name;
      return name;
    }
  }
  throw new CircuitryError('no tensor backend could be loaded');
}

/** The backend in use; initBackend must have run. */
export function backendName(): BackendName {
  if (!active) throw new Error('initBackend() has not been called');
  return active;
}

/** Whether linear layers should cache W^T (wasm's transposed matmul is ~8x slower). */
export function prefersExplicitTranspose(): boolean {
  return tf.getBackend() !== 'tensorflow';
}
