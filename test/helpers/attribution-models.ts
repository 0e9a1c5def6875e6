import { type ModelConfig, configFromHf } from '../../src/model/config.js';
import type { HostTensor } from '../../src/model/safetensors.js';
import { type Gpt2Weights, gpt2WeightsFromTensors } from '../../src/model/weights.js';
import { Transformer } from '../../src/model/transformer.js';
import type { PairData } from '../../src/patching/patcher.js';

/** A small deterministic PRNG (mulberry32) with Gaussian draws (Box–Muller). */
export class TestRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

export interface RandomModelSpec {
  nLayers: number;
  nHeads: number;
  dModel: number;
  dVocab: number;
  nCtx?: number;
  attnOnly?: boolean;
  /** 'none': no LayerNorm anywhere. */
  normalization?: 'LN' | 'none';
  /** Standard deviation of the weights (default 0.02 as GPT-2, scaled up for small widths). */
  std?: number;
  /** Zero the query weights and biases: every attention pattern is then uniform (causal). */
  zeroQueries?: boolean;
  seed?: number;
}

/** A GPT-2-family model with random Gaussian weights (HF tensor names, built in memory). */
export function randomModel(spec: RandomModelSpec): Transformer {
  const { cfg, weights } = randomWeights(spec);
  return new Transformer(cfg, weights);
}

/** The config and random weights of randomModel. */
export function randomWeights(spec: RandomModelSpec): { cfg: ModelConfig; weights: Gpt2Weights } {
  const rng = new TestRng(spec.seed ?? 1);
  const { nLayers: L, dModel: d, dVocab: V } = spec;
  const nCtx = spec.nCtx ?? 64;
  const std = spec.std ?? Math.max(0.02, 1 / Math.sqrt(d));
  const dm = 4 * d;
  const raw = {
    model_type: 'gpt2',
    n_layer: L,
    n_head: spec.nHeads,
    n_embd: d,
    n_inner: spec.attnOnly ? null : dm,
    vocab_size: V,
    n_positions: nCtx,
    ...(spec.attnOnly ? { attn_only: true } : {}),
    ...(spec.normalization === 'none' ? { normalization: 'none' } : {}),
  };
  const cfg = configFromHf(raw, 'random model');
  const tensors = new Map<string, HostTensor>();
  const gauss = (shape: number[], s = std): HostTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.normal() * s;
    return { shape, data };
  };
  const fill = (shape: number[], v: number): HostTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });
  const ln = (name: string) => {
    if (cfg.normalization === 'none') return;
    const w = gauss([d], 0.1);
    for (let i = 0; i < d; i++) w.data[i] += 1;
    tensors.set(`${name}.weight`, w);
    tensors.set(`${name}.bias`, gauss([d], 0.02));
  };
  tensors.set('wte.weight', gauss([V, d], Math.max(std, 0.1)));
  tensors.set('wpe.weight', gauss([nCtx, d], Math.max(std, 0.1) / 2));
  for (let l = 0; l < L; l++) {
    const p = `h.${l}`;
    ln(`${p}.ln_1`);
    const cAttn = gauss([d, 3 * d]);
    const bAttn = gauss([3 * d], 0.02);
    if (spec.zeroQueries) {
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cAttn.data[i * 3 * d + j] = 0;
      for (let j = 0; j < d; j++) bAttn.data[j] = 0;
    }
    tensors.set(`${p}.attn.c_attn.weight`, cAttn);
    tensors.set(`${p}.attn.c_attn.bias`, bAttn);
    tensors.set(`${p}.attn.c_proj.weight`, gauss([d, d]));
    tensors.set(`${p}.attn.c_proj.bias`, gauss([d], 0.02));
    if (!spec.attnOnly) {
      ln(`${p}.ln_2`);
      tensors.set(`${p}.mlp.c_fc.weight`, gauss([d, dm]));
      tensors.set(`${p}.mlp.c_fc.bias`, fill([dm], 0));
      tensors.set(`${p}.mlp.c_proj.weight`, gauss([dm, d], std / 2));
      tensors.set(`${p}.mlp.c_proj.bias`, fill([d], 0));
    }
  }
  ln('ln_f');
  return { cfg, weights: gpt2WeightsFromTensors(cfg, tensors, 'random model') };
}

/**
 * n clean/corrupted pairs of p random tokens: the corrupted prompt differs at `flips` random
 * positions; answers and wrongs are random distinct tokens.
 */
export function randomPairs(n: number, p: number, vocab: number, seed = 7, flips = 2): PairData {
  const rng = new TestRng(seed);
  const clean: number[][] = [];
  const corrupted: number[][] = [];
  const answers: number[][] = [];
  const wrongs: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: p }, () => rng.int(vocab));
    const corr = [...row];
    for (let f = 0; f < flips; f++) {
      const at = rng.int(p);
      corr[at] = (corr[at] + 1 + rng.int(vocab - 1)) % vocab;
    }
    const a = rng.int(vocab);
    const w = (a + 1 + rng.int(vocab - 1)) % vocab;
    clean.push(row);
    corrupted.push(corr);
    answers.push([a]);
    wrongs.push([w]);
  }
  return { clean, corrupted, answers, wrongs };
}
