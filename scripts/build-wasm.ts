import { readFileSync, writeFileSync } from 'node:fs';
import { assembleWat, WAT_SOURCES } from './wat.js';

/** Assembles the hand-written WebAssembly text under src/backend/simd/ into the binaries loaded at run time. */
for (const { wat, wasm } of WAT_SOURCES) {
  const bytes = await assembleWat(readFileSync(wat, 'utf8'), wat);
  writeFileSync(wasm, bytes);
  console.log(`${wasm}: ${bytes.length} bytes`);
}
