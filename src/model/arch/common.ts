import { CircuitryError } from '../../errors.js';
import type { HostTensor } from '../safetensors.js';
import type { NormWeights } from './types.js';

/** Helpers the adapters share: config fields, tensor lookup with shape checks, host layouts. */

export function intField(cfg: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new CircuitryError(`${file}: field '${key}' must be a positive integer, got ${JSON.stringify(cfg[key])}`);
  }
  return v;
}

export function numField(cfg: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new CircuitryError(`${file}: field '${key}' must be a number, got ${JSON.stringify(cfg[key])}`);
  }
  return v;
}

/** A positive number, or null when the field is absent or null (soft-caps, windows). */
export function optionalPositive(cfg: Record<string, unknown>, key: string, file: string): number | null {
  const v = cfg[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !(v > 0)) throw new CircuitryError(`${file}: field '${key}' must be a positive number or null, got ${JSON.stringify(v)}`);
  return v;
}

/** n_kv_heads, checked to divide the query heads. */
export function kvHeads(cfg: Record<string, unknown>, key: string, nHeads: number, file: string): number {
  const nKv = intField(cfg, key, file, nHeads);
  if (nHeads % nKv !== 0) {
    throw new CircuitryError(`${file}: ${nHeads} attention heads cannot be grouped over ${key} = ${nKv} key/value heads (the head count must be a multiple of it)`);
  }
  return nKv;
}

/** The rope settings: transformers 5 `rope_parameters`, else transformers 4's `rope_theta` / `rope_scaling`. */
export function ropeSettings(cfg: Record<string, unknown>, file: string, defaults: { theta: number }): { theta: number; scaling: Record<string, unknown> | null; params: Record<string, unknown> } {
  const params = isRecord(cfg.rope_parameters) ? cfg.rope_parameters : {};
  const theta = numField({ theta: params.rope_theta ?? cfg.rope_theta ?? defaults.theta }, 'theta', `${file} (rope_theta)`);
  const legacy = isRecord(cfg.rope_scaling) ? cfg.rope_scaling : null;
  const type = params.rope_type ?? legacy?.rope_type ?? legacy?.type ?? 'default';
  return { theta, scaling: type === 'default' ? null : { ...(legacy ?? {}), ...params, rope_type: type }, params };
}

/**
 * Rotary inverse frequencies theta^(−2j/dim), j < dim/2, rounded through float32 as transformers
 * computes them; `scaling` = linear (positions divided by factor) or llama3 (long wavelengths
 * divided by factor, a smooth blend between). Other rope types are refused by name.
 */
export function ropeInvFreq(dim: number, theta: number, scaling: Record<string, unknown> | null, file: string): number[] {
  const f = Math.fround;
  const inv: number[] = [];
  for (let j = 0; j < dim / 2; j++) inv.push(f(1 / f(theta ** f((2 * j) / dim))));
  if (!scaling) return inv;
  const type = String(scaling.rope_type);
  const factor = numField(scaling, 'factor', `${file} (rope scaling)`);
  if (type === 'linear') return inv.map((x) => f(x / factor));
  if (type === 'llama3') {
    const low = numField(scaling, 'low_freq_factor', `${file} (rope scaling)`);
    const high = numField(scaling, 'high_freq_factor', `${file} (rope scaling)`);
    const ctx = numField(scaling, 'original_max_position_embeddings', `${file} (rope scaling)`);
    const lowWavelen = ctx / low;
    const highWavelen = ctx / high;
    return inv.map((x) => {
      const wavelen = (2 * Math.PI) / x;
      if (wavelen < highWavelen) return x;
      if (wavelen > lowWavelen) return f(x / factor);
      const smooth = (ctx / wavelen - low) / (high - low);
      return f((1 - smooth) * (x / factor) + smooth * x);
    });
  }
  throw new CircuitryError(`${file}: rope type '${type}' is not supported (supported: default, linear, llama3)`);
}

export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Looks tensors up by name and checks their shapes; errors name the tensor and the expected shape. */
export class TensorReader {
  constructor(
    private readonly tensors: ReadonlyMap<string, HostTensor>,
    readonly source: string,
    private readonly prefix = '',
  ) {}

  has(key: string): boolean {
    return this.tensors.has(this.prefix + key);
  }

  get(key: string, shape: readonly number[]): HostTensor {
    const name = this.prefix + key;
    const t = this.tensors.get(name);
    if (!t) throw new CircuitryError(`${this.source}: missing tensor '${name}' (expected shape [${shape}])`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new CircuitryError(`${this.source}: tensor '${name}' has shape [${t.shape}], expected [${shape}] for this config`);
    }
    return t;
  }

  /** The tensor when present (shape-checked), else undefined. */
  optional(key: string, shape: readonly number[]): HostTensor | undefined {
    return this.has(key) ? this.get(key, shape) : undefined;
  }

  /** An nn.Linear weight [out, in] as x·W [in, out]. */
  linear(key: string, out: number, inDim: number): HostTensor {
    return transpose2d(this.get(key, [out, inDim]));
  }
}

/** [r, c] → [c, r]. */
export function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  const src = t.data;
  for (let i = 0; i < r; i++) {
    const row = i * c;
    for (let j = 0; j < c; j++) out[j * r + i] = src[row + j];
  }
  return { shape: [c, r], data: out };
}

/** Columns [start, start + n) of a [r, c] matrix. */
export function columns(t: HostTensor, start: number, n: number): HostTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * n);
  for (let i = 0; i < r; i++) out.set(t.data.subarray(i * c + start, i * c + start + n), i * n);
  return { shape: [r, n], data: out };
}

/** Elements [start, start + n) of a vector. */
export function slice1d(t: HostTensor, start: number, n: number): HostTensor {
  return { shape: [n], data: t.data.slice(start, start + n) };
}

/** A norm gain stored as w with effective gain 1 + w (Gemma). */
export function onePlus(t: HostTensor): HostTensor {
  return { shape: t.shape, data: t.data.map((x) => 1 + x) };
}

export function rmsNorm(reader: TensorReader, key: string, d: number, gain: (t: HostTensor) => HostTensor = (t) => t): NormWeights {
  return { w: gain(reader.get(`${key}.weight`, [d])) };
}

export function layerNorm(reader: TensorReader, key: string, d: number): NormWeights {
  return { w: reader.get(`${key}.weight`, [d]), b: reader.get(`${key}.bias`, [d]) };
}

/** The unembedding: `key` when untied, else nothing (the embedding is reused). */
export function unembedding(reader: TensorReader, key: string, tied: boolean, V: number, d: number): HostTensor | undefined {
  if (tied) return undefined;
  if (!reader.has(key)) throw new CircuitryError(`${reader.source}: missing tensor '${key}' (expected shape [${V},${d}]; config says tie_word_embeddings is false)`);
  return reader.get(key, [V, d]);
}
