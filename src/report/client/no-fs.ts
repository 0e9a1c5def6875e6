/**
 * node:fs in the live bundle. Only src/backend/simd.ts imports it, to read loops.wasm when the
 * SIMD kernels are registered, which the browser never does; a call fails loudly.
 */
export function readFileSync(path: unknown): never {
  throw new Error(`node:fs is not available in the browser (reading ${String(path)})`);
}
