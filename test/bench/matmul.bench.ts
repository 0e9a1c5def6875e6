import * as tf from '@tensorflow/tfjs';
import { simdActive, singleProductsOnXnnpack } from '../../src/backend/simd.js';
import { fmt } from './timing.js';

/**
 * Single matrix products of GPT-2 small's shapes (8 prompts × 14 tokens against its weights) on
 * the SIMD loops and on XNNPACK, interleaved in one run. The loops serve them so that XNNPACK's
 * packed copy of every weight it multiplies is never made (src/backend/simd.ts).
 */
export async function benchMatmul(log: (line: string) => void): Promise<void> {
  if (!simdActive()) return log('skipped: needs the wasm backend with the SIMD loops');
  const shapes: [number, number, number][] = [[112, 768, 2304], [112, 768, 3072], [112, 3072, 768], [112, 768, 768], [56, 768, 3072], [8, 768, 3072]];
  try {
    for (const [M, K, N] of shapes) {
      const a = tf.randomNormal([M, K]);
      const b = tf.randomNormal([K, N]);
      const ms = { loops: [] as number[], xnnpack: [] as number[] };
      for (let round = 0; round < 7; round++) {
        for (const side of ['loops', 'xnnpack'] as const) {
          singleProductsOnXnnpack(side === 'xnnpack');
          const t0 = performance.now();
          for (let i = 0; i < 5; i++) tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D).dispose();
          if (round > 0) ms[side].push((performance.now() - t0) / 5);
        }
      }
      const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
      const [l, x] = [median(ms.loops), median(ms.xnnpack)];
      const gflops = (t: number) => fmt((2 * M * K * N) / t / 1e6, 1);
      log(`[${M}, ${K}] × [${K}, ${N}]: loops ${fmt(l)} ms (${gflops(l)} GFLOP/s), XNNPACK ${fmt(x)} ms (${gflops(x)} GFLOP/s); loops/XNNPACK ${fmt(l / x)}`);
      tf.dispose([a, b]);
    }
  } finally {
    singleProductsOnXnnpack(false);
  }
}
