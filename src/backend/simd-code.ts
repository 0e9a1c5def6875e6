import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

/**
 * The SIMD loops' binary for this Node process: loops-fma.wasm, whose multiply-adds are fused
 * (relaxed SIMD's f32x4.relaxed_madd: one instruction and one rounding where the CPU has FMA;
 * GPT-2 small's products ran 1.3–1.45x faster), when the runtime runs it; loops.wasm otherwise, or
 * when CIRCUITRY_FMA=0. Node 20 has relaxed SIMD behind a V8 flag, set here at run time before the
 * module compiles (later Node versions ship it). Every worker of a pool loads the same binary, so
 * the worker count never changes a number; the fused build's numbers differ from the plain one's
 * in the last bits of float32.
 */
export function simdLoopsCode(): { code: Uint8Array<ArrayBuffer>; fused: boolean } {
  const file = (name: string) => new Uint8Array(readFileSync(new URL(`./simd/${name}`, import.meta.url)));
  const plain = { code: file('loops.wasm'), fused: false };
  if (process.env.CIRCUITRY_FMA === '0') return plain;
  const fused = file('loops-fma.wasm');
  if (!WebAssembly.validate(fused)) {
    try {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      return plain;
    }
  }
  return WebAssembly.validate(fused) ? { code: fused, fused: true } : plain;
}
