import { readFileSync, writeFileSync } from 'node:fs';
import { assembleWat, fuseMultiplyAdds, WAT_SOURCES } from './wat.js';

/** Assembles the hand-written WebAssembly text under src/backend/simd/ into the binaries loaded at run time. */
for (const { wat, wasm, fused } of WAT_SOURCES) {
  const text = readFileSync(wat, 'utf8');
  for (const [file, bytes] of [
    [wasm, await assembleWat(text, wat)],
    [fused, await assembleWat(fuseMultiplyAdds(text), wat, true)],
  ] as const) {
    writeFileSync(file, bytes);
    console.log(`${file}: ${bytes.length} bytes`);
  }
}
