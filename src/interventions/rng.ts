import { Rng } from '../tasks/random.js';

/**
 * Seeded randomness for the interventions: the tasks' 32-bit PRNG for uniforms, and a
 * Gaussian sampler on top of it (Box–Muller, both values of each pair used). Same seed, same
 * stream on every platform; nothing here touches tfjs' unseeded generators.
 */
export class SeededRandom {
  private readonly rng: Rng;
  private spare: number | undefined;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.rng.next();
  }

  /** Uniform integer in 0..n-1. */
  int(n: number): number {
    return this.rng.int(n);
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    // 1 - u is in (0, 1], so the logarithm is finite
    const r = Math.sqrt(-2 * Math.log(1 - this.rng.next()));
    const theta = 2 * Math.PI * this.rng.next();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** `n` draws of N(0, sigma²). */
  normals(n: number, sigma = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = sigma * this.normal();
    return out;
  }
}
