import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const here = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

/** The WebAssembly text sources and the binaries assembled from them. */
export const WAT_SOURCES = [{ wat: here('src/backend/simd/loops.wat'), wasm: here('src/backend/simd/loops.wasm') }];

/** WebAssembly text to a validated binary (with the SIMD proposal, which Node 20 ships). */
export async function assembleWat(text: string, name: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(name, text, { simd: true });
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}
