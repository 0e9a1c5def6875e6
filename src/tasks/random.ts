import { CircuitryError } from '../errors.js';

/**
 * A small seeded PRNG for dataset generators: a 32-bit Weyl sequence (golden-ratio increment)
 * passed through the murmur3 finalizer (splitmix32). Same seed, same stream, on every platform:
 * only 32-bit integer arithmetic (Math.imul, >>>) is used.
 */
export class Rng {
  private state: number;

  /** `seed` is any safe integer; seeds that differ anywhere in their 53 bits give different streams. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new CircuitryError(`random seed must be an integer, got ${String(seed)}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.state = mix32((lo ^ mix32(hi + 0x6a09e667)) >>> 0);
  }

  /** The next uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state);
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** A uniform integer in 0..n-1 (rejection sampling, so no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x1_0000_0000) throw new RangeError(`Rng.int: n must be an integer in 1..2^32, got ${n}`);
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new RangeError('Rng.pick: empty list');
    return xs[this.int(xs.length)];
  }

  /** A shuffled copy (Fisher-Yates); the argument is not modified. */
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** k distinct elements (distinct positions of `xs`) in random order. */
  sample<T>(xs: readonly T[], k: number): T[] {
    if (!Number.isInteger(k) || k < 0 || k > xs.length) throw new RangeError(`Rng.sample: cannot draw ${k} of ${xs.length}`);
    // partial Fisher-Yates over a copy of the indices
    const idx = xs.map((_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + this.int(idx.length - i);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, k).map((i) => xs[i]);
  }
}

/** The murmur3 32-bit finalizer: a bijection on uint32 that spreads every input bit. */
function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
