import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const here = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

/**
 * The WebAssembly text sources and the binaries assembled from them: `wasm` as written, `fused`
 * with every f32x4 multiply-then-add fused (`fuseMultiplyAdds`, relaxed SIMD).
 */
export const WAT_SOURCES = [{ wat: here('src/backend/simd/loops.wat'), wasm: here('src/backend/simd/loops.wasm'), fused: here('src/backend/simd/loops-fma.wasm') }];

/** WebAssembly text to a validated binary (with the SIMD proposal, which Node 20 ships, and relaxed SIMD when `relaxed`). */
export async function assembleWat(text: string, name: string, relaxed = false): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(name, text, { simd: true, relaxed_simd: relaxed });
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/**
 * The text with every `(f32x4.add X (f32x4.mul A B))` written `(f32x4.relaxed_madd A B X)`: one
 * fused multiply-add (a single rounding) where the CPU has one: fewer instructions per product.
 */
export function fuseMultiplyAdds(text: string): string {
  const head = '(f32x4.add ';
  let out = '';
  let at = 0;
  for (let i = text.indexOf(head); i >= 0; i = text.indexOf(head, at)) {
    out += text.slice(at, i);
    const end = closing(text, i);
    const [x, product] = operands(text.slice(i + head.length, end));
    const mul = product?.startsWith('(f32x4.mul ') ? operands(product.slice('(f32x4.mul '.length, -1)) : undefined;
    out += mul && mul.length === 2 ? `(f32x4.relaxed_madd ${fuseMultiplyAdds(mul[0])} ${fuseMultiplyAdds(mul[1])} ${fuseMultiplyAdds(x)})` : text.slice(i, end + 1);
    at = end + 1;
  }
  return out + text.slice(at);
}

/** The index of the parenthesis closing the one at `open`. */
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses from offset ${open}`);
}

/** The parenthesised operands of an instruction's body, in order. */
function operands(body: string): string[] {
  const found: string[] = [];
  for (let i = body.indexOf('('); i >= 0; i = body.indexOf('(', i)) {
    const end = closing(body, i);
    found.push(body.slice(i, end + 1));
    i = end + 1;
  }
  return found;
}
