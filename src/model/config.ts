import { CircuitryError } from '../errors.js';

/**
 * The resolved configuration of a GPT-2-family model. Variants are flags of this one record
 * (attention-only, LayerNorm-free), so new families become new fields, not new code paths.
 */
export interface ModelConfig {
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dModel: number;
  readonly dHead: number;
  readonly dMlp: number; // 0 for attention-only models
  readonly dVocab: number;
  readonly nCtx: number;
  readonly act: 'gelu_new' | 'gelu' | 'relu';
  readonly normalization: 'LN' | 'none';
  readonly attnOnly: boolean;
  readonly tiedEmbeddings: boolean;
  readonly lnEps: number;
  readonly positional: 'learned';
  readonly parallelAttnMlp: false;
}

const ACTS = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu: 'gelu', relu: 'relu' } as const;

function intField(cfg: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new CircuitryError(`${file}: field '${key}' must be a positive integer, got ${JSON.stringify(cfg[key])}`);
  }
  return v;
}

/**
 * Reads a HuggingFace GPT-2 `config.json` object. circuitry's own extensions (used by zoo
 * models) are `attn_only: true` and `normalization: "none"`.
 */
export function configFromHf(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CircuitryError(`${file}: expected a JSON object`);
  }
  const cfg = raw as Record<string, unknown>;
  const modelType = cfg.model_type;
  const archs = Array.isArray(cfg.architectures) ? cfg.architectures.join(', ') : undefined;
  if (modelType !== 'gpt2') {
    throw new CircuitryError(
      `${file}: unsupported architecture (model_type ${JSON.stringify(modelType)}${archs ? `, architectures ${archs}` : ''}): circuitry loads the GPT-2 family (model_type "gpt2")`,
    );
  }
  if (cfg.scale_attn_by_inverse_layer_idx === true || cfg.reorder_and_upcast_attn === true) {
    throw new CircuitryError(`${file}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported`);
  }
  if (cfg.scale_attn_weights === false) {
    throw new CircuitryError(`${file}: scale_attn_weights false is not supported`);
  }
  const nLayers = intField(cfg, 'n_layer', file);
  const nHeads = intField(cfg, 'n_head', file);
  const dModel = intField(cfg, 'n_embd', file);
  if (dModel % nHeads !== 0) throw new CircuitryError(`${file}: n_embd (${dModel}) must be divisible by n_head (${nHeads})`);
  const attnOnly = cfg.attn_only === true;
  const actName = String(cfg.activation_function ?? 'gelu_new');
  if (!(actName in ACTS)) {
    throw new CircuitryError(`${file}: activation_function '${actName}' is not supported (expected one of ${Object.keys(ACTS).join(', ')})`);
  }
  const normalization = cfg.normalization === 'none' ? 'none' : 'LN';
  return {
    nLayers,
    nHeads,
    dModel,
    dHead: dModel / nHeads,
    dMlp: attnOnly ? 0 : cfg.n_inner == null ? 4 * dModel : intField(cfg, 'n_inner', file),
    dVocab: intField(cfg, 'vocab_size', file),
    nCtx: intField(cfg, 'n_positions', file, 1024),
    act: ACTS[actName as keyof typeof ACTS],
    normalization,
    attnOnly,
    tiedEmbeddings: cfg.tie_word_embeddings !== false,
    lnEps: typeof cfg.layer_norm_epsilon === 'number' ? cfg.layer_norm_epsilon : 1e-5,
    positional: 'learned',
    parallelAttnMlp: false,
  };
}

/** The HF config.json object for a resolved config (used when saving zoo and trained models). */
export function configToHf(cfg: ModelConfig): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: cfg.nLayers,
    n_head: cfg.nHeads,
    n_embd: cfg.dModel,
    n_inner: cfg.attnOnly ? null : cfg.dMlp,
    vocab_size: cfg.dVocab,
    n_positions: cfg.nCtx,
    activation_function: cfg.act,
    layer_norm_epsilon: cfg.lnEps,
    tie_word_embeddings: cfg.tiedEmbeddings,
    scale_attn_weights: true,
    ...(cfg.attnOnly ? { attn_only: true } : {}),
    ...(cfg.normalization === 'none' ? { normalization: 'none' } : {}),
  };
}
