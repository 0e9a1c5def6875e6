import { CircuitryError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import type { HostTensor } from '../safetensors.js';
import { TensorReader, intField, kvHeads, numField, rmsNorm, ropeInvFreq, ropeSettings, transpose2d, unembedding } from './common.js';
import type { ArchAdapter, LayerWeights, ModelWeights, NormWeights } from './types.js';

/**
 * Llama (Llama-2/3): RMSNorm, rotary over the whole head, SwiGLU, grouped-query attention, no
 * biases unless attention_bias / mlp_bias, untied `lm_head` unless tie_word_embeddings.
 * `llamaLike` is shared with the families built on the same block (Qwen2, Gemma-2).
 */
const ACTS = { silu: 'silu', gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu' } as const;

export interface LlamaLikeOptions {
  readonly family: string;
  /** The activation key of config.json. */
  readonly actKey: string;
  readonly defaultAct: string;
  readonly defaultTheta: number;
  /** Fields the family adds on top (soft-caps, scales, windows, post norms). */
  readonly extra?: (cfg: Record<string, unknown>, file: string, base: ModelConfig) => Partial<ModelConfig>;
}

export function llamaLikeConfig(cfg: Record<string, unknown>, file: string, opts: LlamaLikeOptions): ModelConfig {
  const nLayers = intField(cfg, 'num_hidden_layers', file);
  const nHeads = intField(cfg, 'num_attention_heads', file);
  const dModel = intField(cfg, 'hidden_size', file);
  const nKvHeads = kvHeads(cfg, 'num_key_value_heads', nHeads, file);
  if (cfg.head_dim == null && dModel % nHeads !== 0) throw new CircuitryError(`${file}: hidden_size (${dModel}) must be divisible by num_attention_heads (${nHeads}) when head_dim is not given`);
  const dHead = cfg.head_dim == null ? dModel / nHeads : intField(cfg, 'head_dim', file);
  if (dHead % 2 !== 0) throw new CircuitryError(`${file}: head_dim ${dHead} must be even for rotary embeddings`);
  const actName = String(cfg[opts.actKey] ?? opts.defaultAct);
  if (!(actName in ACTS)) throw new CircuitryError(`${file}: ${opts.actKey} '${actName}' is not supported (expected one of ${Object.keys(ACTS).join(', ')})`);
  const rope = ropeSettings(cfg, file, { theta: opts.defaultTheta });
  const base: ModelConfig = {
    family: opts.family,
    nLayers,
    nHeads,
    nKvHeads,
    dModel,
    dHead,
    dMlp: intField(cfg, 'intermediate_size', file),
    dVocab: intField(cfg, 'vocab_size', file),
    nCtx: intField(cfg, 'max_position_embeddings', file, 2048),
    act: ACTS[actName as keyof typeof ACTS],
    gatedMlp: true,
    normalization: 'RMS',
    attnOnly: false,
    tiedEmbeddings: cfg.tie_word_embeddings === true,
    lnEps: numField(cfg, 'rms_norm_eps', file, 1e-6),
    positional: 'rotary',
    rotaryDim: dHead,
    rotaryBase: rope.theta,
    rotaryInvFreq: ropeInvFreq(dHead, rope.theta, rope.scaling, file),
    parallelAttnMlp: false,
    postNorms: false,
    embedScale: 1,
    attnScale: 1 / Math.sqrt(dHead),
    attnSoftCap: null,
    finalSoftCap: null,
    slidingWindows: Array.from({ length: nLayers }, () => null),
  };
  return { ...base, ...(opts.extra?.(cfg, file, base) ?? {}) };
}

export interface LlamaLikeWeightOptions {
  /** Biases that must be present (others are read when the file has them). */
  readonly qkvBias: boolean;
  readonly oBias: boolean;
  readonly mlpBias: boolean;
  /** Gemma-2: the stored norm weight w means a gain of 1 + w. */
  readonly normGain?: (t: HostTensor) => HostTensor;
  /** Gemma-2: post_attention_layernorm is the norm after attention, pre/post_feedforward_layernorm around the MLP. */
  readonly sandwichNorms?: boolean;
}

export function llamaLikeWeights(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string, opts: LlamaLikeWeightOptions): ModelWeights {
  const r = new TensorReader(tensors, source, 'model.');
  const { dModel: d, dMlp: dm, dVocab: V, nHeads: H, nKvHeads: Hkv, dHead: dh } = cfg;
  const norm = (key: string): NormWeights => rmsNorm(r, key, d, opts.normGain);
  const bias = (present: boolean, key: string, n: number) => (present ? r.get(key, [n]) : r.optional(key, [n]));
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `layers.${l}`;
    const a = `${p}.self_attn`;
    const m = `${p}.mlp`;
    layers.push({
      ln1: norm(`${p}.input_layernorm`),
      attn: {
        wQ: r.linear(`${a}.q_proj.weight`, H * dh, d),
        wK: r.linear(`${a}.k_proj.weight`, Hkv * dh, d),
        wV: r.linear(`${a}.v_proj.weight`, Hkv * dh, d),
        bQ: bias(opts.qkvBias, `${a}.q_proj.bias`, H * dh),
        bK: bias(opts.qkvBias, `${a}.k_proj.bias`, Hkv * dh),
        bV: bias(opts.qkvBias, `${a}.v_proj.bias`, Hkv * dh),
        wO: r.linear(`${a}.o_proj.weight`, d, H * dh),
        bO: bias(opts.oBias, `${a}.o_proj.bias`, d),
      },
      ...(opts.sandwichNorms
        ? { postAttnNorm: norm(`${p}.post_attention_layernorm`), ln2: norm(`${p}.pre_feedforward_layernorm`), postMlpNorm: norm(`${p}.post_feedforward_layernorm`) }
        : { ln2: norm(`${p}.post_attention_layernorm`) }),
      mlp: {
        wGate: r.linear(`${m}.gate_proj.weight`, dm, d),
        bGate: bias(opts.mlpBias, `${m}.gate_proj.bias`, dm),
        wIn: r.linear(`${m}.up_proj.weight`, dm, d),
        bIn: bias(opts.mlpBias, `${m}.up_proj.bias`, dm),
        wOut: r.linear(`${m}.down_proj.weight`, d, dm),
        bOut: bias(opts.mlpBias, `${m}.down_proj.bias`, d),
      },
    });
  }
  return {
    embed: r.get('embed_tokens.weight', [V, d]),
    layers,
    lnF: norm('norm'),
    unembed: unembedding(new TensorReader(tensors, source), 'lm_head.weight', cfg.tiedEmbeddings, V, d),
  };
}

const OPTIONS: LlamaLikeOptions = { family: 'llama', actKey: 'hidden_act', defaultAct: 'silu', defaultTheta: 10000 };

/**
 * The description back in the Llama block's checkpoint names (nn.Linear [out, in]); `normGain`
 * undoes the family's stored-gain convention, `sandwichNorms` as for llamaLikeWeights.
 */
export function llamaLikeTensors(cfg: ModelConfig, w: ModelWeights, opts: { normGain?: (t: HostTensor) => HostTensor; sandwichNorms?: boolean } = {}): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const gain = opts.normGain ?? ((t: HostTensor) => t);
  const norm = (key: string, n: NormWeights | undefined) => {
    if (n) out.set(`${key}.weight`, gain(n.w));
  };
  const linear = (key: string, t: HostTensor | undefined, b?: HostTensor) => {
    if (t) out.set(`${key}.weight`, transpose2d(t));
    if (b) out.set(`${key}.bias`, b);
  };
  out.set('model.embed_tokens.weight', w.embed);
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    norm(`${p}.input_layernorm`, l.ln1);
    linear(`${p}.self_attn.q_proj`, l.attn.wQ, l.attn.bQ);
    linear(`${p}.self_attn.k_proj`, l.attn.wK, l.attn.bK);
    linear(`${p}.self_attn.v_proj`, l.attn.wV, l.attn.bV);
    linear(`${p}.self_attn.o_proj`, l.attn.wO, l.attn.bO);
    if (opts.sandwichNorms) {
      norm(`${p}.post_attention_layernorm`, l.postAttnNorm);
      norm(`${p}.pre_feedforward_layernorm`, l.ln2);
      norm(`${p}.post_feedforward_layernorm`, l.postMlpNorm);
    } else norm(`${p}.post_attention_layernorm`, l.ln2);
    linear(`${p}.mlp.gate_proj`, l.mlp?.wGate, l.mlp?.bGate);
    linear(`${p}.mlp.up_proj`, l.mlp?.wIn, l.mlp?.bIn);
    linear(`${p}.mlp.down_proj`, l.mlp?.wOut, l.mlp?.bOut);
  });
  norm('model.norm', w.lnF);
  if (w.unembed && !cfg.tiedEmbeddings) out.set('lm_head.weight', w.unembed);
  return out;
}

/** config.json of a Llama-block config (rope scaling and family extras are the caller's). */
export function llamaLikeHf(cfg: ModelConfig, modelType: string, architecture: string, act: string): Record<string, unknown> {
  return {
    model_type: modelType,
    architectures: [architecture],
    num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads,
    num_key_value_heads: cfg.nKvHeads,
    hidden_size: cfg.dModel,
    head_dim: cfg.dHead,
    intermediate_size: cfg.dMlp,
    vocab_size: cfg.dVocab,
    max_position_embeddings: cfg.nCtx,
    rms_norm_eps: cfg.lnEps,
    rope_theta: cfg.rotaryBase,
    tie_word_embeddings: cfg.tiedEmbeddings,
    hidden_act: act,
  };
}

export const ACT_NAMES: Record<ModelConfig['act'], string> = { silu: 'silu', gelu: 'gelu', gelu_new: 'gelu_pytorch_tanh', relu: 'relu' };

function toHf(cfg: ModelConfig): Record<string, unknown> {
  if (cfg.rotaryInvFreq.some((x, j) => x !== ropeInvFreq(cfg.rotaryDim, cfg.rotaryBase, null, 'config')[j])) {
    throw new CircuitryError('saving a llama config with rope scaling is not supported');
  }
  return llamaLikeHf(cfg, 'llama', 'LlamaForCausalLM', ACT_NAMES[cfg.act]);
}

/** Biases (attention_bias, mlp_bias) are read when the file has them. */
function weights(cfg: ModelConfig, tensors: ReadonlyMap<string, HostTensor>, source: string): ModelWeights {
  return llamaLikeWeights(cfg, tensors, source, { qkvBias: false, oBias: false, mlpBias: false });
}

export const llama: ArchAdapter = {
  family: 'llama',
  modelTypes: ['llama'],
  example: 'meta-llama/Llama-3.2-1B',
  config: (cfg, file) => llamaLikeConfig(cfg, file, OPTIONS),
  weights,
  toHf,
  toTensors: (cfg, w) => llamaLikeTensors(cfg, w),
};
