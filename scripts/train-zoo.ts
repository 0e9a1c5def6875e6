/**
 * Trains the zoo's small models on a mixture of small-vocabulary IOI, greater-than and induction
 * (scripts/zoo-data.ts), deterministically from a seed, and writes each as a HuggingFace folder
 * (config.json, model.safetensors) with vocab.json and MODEL_CARD.md. `--arch gpt2` (the
 * default) is the GPT-2 block; `--arch llama` the modern one (rotary, RMSNorm, SwiGLU,
 * grouped-query attention), written as a HF llama folder.
 *
 *   npm run train:zoo                      # the shipped model: src/zoo/trained/mini-gpt2
 *   npm run train:zoo -- --arch llama      # the shipped model: src/zoo/trained/mini-llama
 *   npm run train:zoo -- --steps 5 --out /tmp/m --eval-n 0
 *
 * Same seed, same weights: the initialisation and the data order come from seeded PRNGs, and
 * tfjs on wasm computes the same floats every run on one machine. Progress lines report the loss
 * per task and the accuracy on held-out seed 0; the model card gets the final held-out results.
 *
 * This is a script (running it trains); nothing imports it.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.js';
import { configFromHf, configToHf, type ModelConfig } from '../src/model/config.js';
import { checkpointOf, modelFromTensors } from '../src/model/arch/index.js';
import type { HostTensor } from '../src/model/safetensors.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { gpt2WeightsFromTensors } from '../src/model/weights.js';
import { Transformer } from '../src/model/transformer.js';
import { CircuitryError } from '../src/errors.js';
import { Rng } from '../src/tasks/random.js';
import { ZOO_PAD_ID, ZOO_VOCAB } from '../src/zoo/vocab.js';
import {
  type EvalResult,
  type TrainRow,
  type ZooTask,
  ANSWER_WEIGHT,
  GT_TRAIN_CENTURIES,
  INDUCTION_TRAIN_LENGTHS,
  TRAIN_SEED_BASE,
  ZOO_TASKS,
  evaluateZooModel,
  trainRows,
} from './zoo-data.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ZOO_ARCHS = ['gpt2', 'llama'] as const;
type ZooArch = (typeof ZOO_ARCHS)[number];
const DEFAULT_OUT: Readonly<Record<ZooArch, string>> = {
  gpt2: join(ROOT, 'src', 'zoo', 'trained', 'mini-gpt2'),
  llama: join(ROOT, 'src', 'zoo', 'trained', 'mini-llama'),
};

interface TrainOptions {
  readonly arch: ZooArch;
  readonly seed: number;
  readonly steps: number;
  /** The tasks of the mixture (all three for the shipped model). */
  readonly tasks: readonly ZooTask[];
  /** Rows per task per step. */
  readonly batchPerTask: number;
  readonly lr: number;
  readonly warmup: number;
  readonly weightDecay: number;
  /** Evaluate every this many steps (0: only at the end). */
  readonly evalEvery: number;
  /** Prompts per task for evaluation (0: no evaluation). */
  readonly evalN: number;
  readonly out: string;
  readonly layers: number;
  readonly heads: number;
  readonly dModel: number;
  readonly nCtx: number;
  /** Key/value heads (llama only; each shared by heads / kvHeads query heads). */
  readonly kvHeads: number;
}

const DEFAULTS: TrainOptions = {
  arch: 'gpt2',
  seed: 0,
  steps: 2000,
  tasks: ZOO_TASKS,
  batchPerTask: 32,
  lr: 3e-3,
  warmup: 150,
  weightDecay: 0.01,
  evalEvery: 250,
  evalN: 200,
  out: DEFAULT_OUT.gpt2,
  layers: 3,
  heads: 4,
  dModel: 64,
  nCtx: 24,
  kvHeads: 2,
};

/** Task weights in the loss (each task's loss is the weighted mean over its trained positions). */
const TASK_WEIGHT: Readonly<Record<ZooTask, number>> = { ioi: 1, 'greater-than': 1, induction: 1 };

/** Tensors of N(0, std²) entries drawn in order from one seeded stream. */
function normalSampler(rng: Rng): (shape: number[], std: number) => HostTensor {
  return (shape, std) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      // Box-Muller: two normals from two uniforms (1 - u keeps the log finite)
      const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
      const t = 2 * Math.PI * rng.next();
      data[i] = std * r * Math.cos(t);
      if (i + 1 < n) data[i + 1] = std * r * Math.sin(t);
    }
    return { shape, data };
  };
}

/** GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L), LN = identity. */
function initTensors(cfg: ModelConfig, seed: number): Map<string, HostTensor> {
  const normal = normalSampler(new Rng(seed));
  const fill = (n: number, v: number): HostTensor => ({ shape: [n], data: new Float32Array(n).fill(v) });
  const { dModel: d, dMlp: dm, dVocab: V, nCtx, nLayers: L } = cfg;
  const resid = 0.02 / Math.sqrt(2 * L);
  const t = new Map<string, HostTensor>();
  t.set('wte.weight', normal([V, d], 0.02));
  t.set('wpe.weight', normal([nCtx, d], 0.01));
  for (let l = 0; l < L; l++) {
    const p = `h.${l}`;
    t.set(`${p}.ln_1.weight`, fill(d, 1));
    t.set(`${p}.ln_1.bias`, fill(d, 0));
    t.set(`${p}.attn.c_attn.weight`, normal([d, 3 * d], 0.02));
    t.set(`${p}.attn.c_attn.bias`, fill(3 * d, 0));
    t.set(`${p}.attn.c_proj.weight`, normal([d, d], resid));
    t.set(`${p}.attn.c_proj.bias`, fill(d, 0));
    t.set(`${p}.ln_2.weight`, fill(d, 1));
    t.set(`${p}.ln_2.bias`, fill(d, 0));
    t.set(`${p}.mlp.c_fc.weight`, normal([d, dm], 0.02));
    t.set(`${p}.mlp.c_fc.bias`, fill(dm, 0));
    t.set(`${p}.mlp.c_proj.weight`, normal([dm, d], resid));
    t.set(`${p}.mlp.c_proj.bias`, fill(d, 0));
  }
  t.set('ln_f.weight', fill(d, 1));
  t.set('ln_f.bias', fill(d, 0));
  if (!cfg.tiedEmbeddings) t.set('lm_head.weight', normal([V, d], 0.02));
  return t;
}

/**
 * The same scheme in the Llama block's names (nn.Linear [out, in]): no biases, no positions
 * (rotary), RMSNorm gains 1, residual projections (o_proj, down_proj) scaled by 1/sqrt(2L).
 */
function initLlamaTensors(cfg: ModelConfig, seed: number): Map<string, HostTensor> {
  // the embedding is the first draw of the seed's stream (as GPT-2's wte), the rest from seed + 1
  const embed = normalSampler(new Rng(seed))([cfg.dVocab, cfg.dModel], 0.02);
  const normal = normalSampler(new Rng(seed + 1));
  const ones = (n: number): HostTensor => ({ shape: [n], data: new Float32Array(n).fill(1) });
  const { dModel: d, dMlp: dm, dVocab: V, nLayers: L, nHeads: H, nKvHeads: Hkv, dHead: dh } = cfg;
  const resid = 0.02 / Math.sqrt(2 * L);
  const t = new Map<string, HostTensor>();
  t.set('model.embed_tokens.weight', embed);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    t.set(`${p}.input_layernorm.weight`, ones(d));
    t.set(`${p}.self_attn.q_proj.weight`, normal([H * dh, d], 0.02));
    t.set(`${p}.self_attn.k_proj.weight`, normal([Hkv * dh, d], 0.02));
    t.set(`${p}.self_attn.v_proj.weight`, normal([Hkv * dh, d], 0.02));
    t.set(`${p}.self_attn.o_proj.weight`, normal([d, H * dh], resid));
    t.set(`${p}.post_attention_layernorm.weight`, ones(d));
    t.set(`${p}.mlp.gate_proj.weight`, normal([dm, d], 0.02));
    t.set(`${p}.mlp.up_proj.weight`, normal([dm, d], 0.02));
    t.set(`${p}.mlp.down_proj.weight`, normal([d, dm], resid));
  }
  t.set('model.norm.weight', ones(d));
  if (!cfg.tiedEmbeddings) t.set('lm_head.weight', normal([V, d], 0.02));
  return t;
}

/**
 * A step's rows, right-padded to one length: tokens [b, p], target weights [b*p, V] (each task's
 * weights sum to its share of the loss) and the rows' tasks as a one-hot [b, T] (for logging).
 */
interface Batch {
  readonly b: number;
  readonly p: number;
  readonly tokens: Int32Array;
  readonly targets: Float32Array;
  readonly taskOf: Float32Array;
  /** Each task's share of the loss, in ZOO_TASKS order (0 for tasks not in the mixture). */
  readonly shares: readonly number[];
}

function makeBatch(rows: readonly TrainRow[], vocab: number, tasks: readonly ZooTask[]): Batch {
  const p = Math.max(...rows.map((r) => r.tokens.length));
  const b = rows.length;
  const tokens = new Int32Array(b * p).fill(ZOO_PAD_ID);
  const targets = new Float32Array(b * p * vocab);
  const taskOf = new Float32Array(b * ZOO_TASKS.length);
  const total = tasks.reduce((a, t) => a + TASK_WEIGHT[t], 0);
  const shares = ZOO_TASKS.map((t) => (tasks.includes(t) ? TASK_WEIGHT[t] / total : 0));
  const weightSum = new Map<ZooTask, number>();
  for (const r of rows) weightSum.set(r.task, r.targets.reduce((a, t) => a + t.weight, weightSum.get(r.task) ?? 0));
  rows.forEach((r, i) => {
    tokens.set(r.tokens, i * p);
    const t = ZOO_TASKS.indexOf(r.task);
    taskOf[i * ZOO_TASKS.length + t] = 1;
    for (const target of r.targets) {
      const w = (shares[t] * target.weight) / weightSum.get(r.task)! / target.ids.length;
      for (const id of target.ids) targets[(i * p + target.pos) * vocab + id] += w;
    }
  });
  return { b, p, tokens, targets, taskOf, shares };
}

/** The rows of training step `step`: batchPerTask of each task, from training seeds only. */
function stepBatch(opts: TrainOptions, step: number, vocab: number): Batch {
  const rows = opts.tasks.flatMap((task) => trainRows(task, opts.batchPerTask, (opts.seed * 10_000_000 + step) * ZOO_TASKS.length + ZOO_TASKS.indexOf(task)));
  return makeBatch(rows, vocab, opts.tasks);
}

/** Linear warmup, then cosine decay to a tenth of the peak. */
function learningRate(opts: TrainOptions, step: number): number {
  if (step < opts.warmup) return (opts.lr * (step + 1)) / opts.warmup;
  const progress = (step - opts.warmup) / Math.max(1, opts.steps - opts.warmup);
  return opts.lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}

/** AdamW (decoupled weight decay on matrices only) with global gradient-norm clipping. */
class AdamW {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(
    private readonly params: readonly tf.Variable[],
    private readonly betas: [number, number] = [0.9, 0.98],
    private readonly eps = 1e-8,
    private readonly clip = 1,
  ) {
    this.m = params.map((p) => tf.variable(tf.zerosLike(p), false));
    this.v = params.map((p) => tf.variable(tf.zerosLike(p), false));
  }

  step(grads: readonly tf.Tensor[], lr: number, weightDecay: number): number {
    this.t++;
    const [b1, b2] = this.betas;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    return tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0];
      const scale = norm > this.clip ? this.clip / norm : 1;
      this.params.forEach((p, i) => {
        const g = tf.mul(grads[i], scale);
        const m = tf.add(tf.mul(this.m[i], b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i], b2), tf.mul(tf.square(g), 1 - b2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.eps));
        const decay = p.rank >= 2 ? weightDecay : 0;
        p.assign(tf.sub(tf.mul(p, 1 - lr * decay), tf.mul(update, lr)));
      });
      return norm;
    });
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/** Rows of one-hot vectors [ids.length, vocab]. */
function oneHotRows(ids: Int32Array, vocab: number): Float32Array {
  const out = new Float32Array(ids.length * vocab);
  ids.forEach((id, i) => (out[i * vocab + id] = 1));
  return out;
}

/**
 * onehot @ wte with the gradient onehot^T @ dy for wte only: wasm has no gradient for gather,
 * and its matmul with a transposed operand is slow, so the transpose is materialised once.
 */
function embedding(onehot: tf.Tensor, onehotT: tf.Tensor, wte: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const w = args[0] as tf.Tensor;
    return { value: tf.matMul(onehot, w), gradFunc: (dy) => tf.matMul(onehotT, dy as tf.Tensor) };
  });
  return f(wte) as tf.Tensor;
}

interface TrainResult {
  readonly cfg: ModelConfig;
  /** config.json as written */
  readonly hfConfig: Record<string, unknown>;
  readonly tensors: Map<string, HostTensor>;
  readonly seconds: number;
  readonly history: readonly { step: number; loss: number; eval?: EvalResult }[];
  readonly final?: EvalResult;
  /** The machine's 1-minute load average, averaged over the progress lines (timings are only comparable at equal load). */
  readonly meanLoad: number;
}

/** The config.json of the model to train. */
function zooHfConfig(opts: Pick<TrainOptions, 'arch' | 'layers' | 'heads' | 'kvHeads' | 'dModel' | 'nCtx'>): Record<string, unknown> {
  if (opts.arch === 'llama') {
    return {
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      num_hidden_layers: opts.layers,
      num_attention_heads: opts.heads,
      num_key_value_heads: opts.kvHeads,
      hidden_size: opts.dModel,
      head_dim: opts.dModel / opts.heads,
      // SwiGLU's usual width: 2/3 of 4·d_model (three matrices instead of two), rounded up to 8
      intermediate_size: Math.ceil((8 * opts.dModel) / 3 / 8) * 8,
      vocab_size: ZOO_VOCAB.length,
      max_position_embeddings: opts.nCtx,
      hidden_act: 'silu',
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      attention_bias: false,
      mlp_bias: false,
      tie_word_embeddings: false,
    };
  }
  return configToHf(zooConfig(opts));
}

function zooConfig(opts: Pick<TrainOptions, 'arch' | 'layers' | 'heads' | 'kvHeads' | 'dModel' | 'nCtx'>): ModelConfig {
  if (opts.arch === 'llama') return configFromHf(zooHfConfig(opts));
  return configFromHf({
    model_type: 'gpt2',
    n_layer: opts.layers,
    n_head: opts.heads,
    n_embd: opts.dModel,
    n_inner: 4 * opts.dModel,
    vocab_size: ZOO_VOCAB.length,
    n_positions: opts.nCtx,
    activation_function: 'gelu_new',
    tie_word_embeddings: false,
  });
}

/** A fresh trainable model of the options' shape, initialised from the seed. */
function initialModel(opts: TrainOptions): Transformer {
  const cfg = zooConfig(opts);
  if (opts.arch === 'llama') return modelFromTensors(zooHfConfig(opts), initLlamaTensors(cfg, opts.seed), 'init', { trainable: true });
  return new Transformer(cfg, gpt2WeightsFromTensors(cfg, initTensors(cfg, opts.seed), 'init'), { trainable: true });
}

/** Trains a model; `log` receives the progress lines. */
function train(opts: TrainOptions, log: (line: string) => void = console.log): TrainResult {
  const model = initialModel(opts);
  const cfg = model.cfg;
  const V = cfg.dVocab;
  const params = model.variables();
  // wasm has no gradient for gather: the embedding is recomputed as onehot @ wte in a hook
  const wte = params[0];
  if (wte.shape[0] !== V || wte.shape[1] !== cfg.dModel) throw new Error(`expected wte as the first variable, got shape [${wte.shape}]`);
  const optimizer = new AdamW(params);
  const taskLoss = new Map<ZooTask, number>();
  const loads: number[] = [];
  const start = performance.now();
  const history: { step: number; loss: number; eval?: EvalResult }[] = [];
  let lossSum = 0;
  const timing = { data: 0, grad: 0, update: 0 };
  let lossCount = 0;
  try {
    for (let step = 0; step < opts.steps; step++) {
      const t0 = performance.now();
      const batch = stepBatch(opts, step, V);
      const t1 = performance.now();
      const { value, grads } = tf.tidy(() => {
        const tokens = tf.tensor2d(batch.tokens, [batch.b, batch.p], 'int32');
        // built on the host: wasm's OneHot kernel ignores a float32 dtype (writes int bits)
        const onehot = tf.tensor2d(oneHotRows(batch.tokens, V), [batch.b * batch.p, V]);
        const onehotT = tf.transpose(onehot);
        const targets = tf.tensor2d(batch.targets, [batch.b * batch.p, V]);
        const taskOf = tf.tensor2d(batch.taskOf, [batch.b, ZOO_TASKS.length]);
        let perTask: tf.Tensor = tf.zeros([0]);
        const f = () => {
          const embed = tf.reshape(embedding(onehot, onehotT, wte), [batch.b, batch.p, cfg.dModel]);
          const logits = model.forward(tokens, { hooks: { hook_embed: () => embed } });
          const logp = tf.logSoftmax(tf.reshape(logits, [batch.b * batch.p, V]), -1);
          const perRow = tf.reshape(tf.sum(tf.reshape(tf.mul(logp, targets), [batch.b, batch.p * V]), 1), [1, batch.b]);
          // kept: variableGrads disposes everything of the forward pass but its result
          perTask = tf.keep(tf.neg(tf.reshape(tf.matMul(perRow, taskOf), [ZOO_TASKS.length])));
          return tf.sum(perTask) as tf.Scalar;
        };
        const r = tf.variableGrads(f, params);
        return { value: perTask, grads: params.map((p) => r.grads[p.name]) };
      });
      // each task's mean cross-entropy (its rows carried its share of the loss)
      const parts = Array.from(value.dataSync());
      const loss = parts.reduce((a, x) => a + x, 0);
      opts.tasks.forEach((t) => {
        const i = ZOO_TASKS.indexOf(t);
        taskLoss.set(t, (taskLoss.get(t) ?? 0) + parts[i] / batch.shares[i]);
      });
      const t2 = performance.now();
      optimizer.step(grads, learningRate(opts, step), opts.weightDecay);
      timing.data += t1 - t0;
      timing.grad += t2 - t1;
      timing.update += performance.now() - t2;
      tf.dispose([value, ...grads]);
      if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${step} (loss ${loss})`);
      lossSum += loss;
      lossCount++;
      const last = step === opts.steps - 1;
      if ((opts.evalEvery > 0 && (step + 1) % opts.evalEvery === 0) || last) {
        const entry: { step: number; loss: number; eval?: EvalResult } = { step: step + 1, loss: lossSum / lossCount };
        if (opts.evalN > 0) entry.eval = evaluateZooModel(model, { n: opts.evalN, seeds: [0] });
        history.push(entry);
        loads.push(loadavg()[0]);
        const secs = (performance.now() - start) / 1000;
        const tasks = opts.tasks
          .map((t) => `${t} ${(taskLoss.get(t)! / lossCount).toFixed(3)}${entry.eval ? ` ${(100 * entry.eval.tasks[t].accuracy).toFixed(1)}%` : ''}`)
          .join('  ');
        const ms = (x: number) => (x / lossCount).toFixed(0);
        log(`step ${String(step + 1).padStart(5)}  loss ${entry.loss.toFixed(4)}  [${tasks}]  lr ${learningRate(opts, step).toExponential(2)}  ${secs.toFixed(0)}s (ms/step data ${ms(timing.data)} grad ${ms(timing.grad)} update ${ms(timing.update)})`);
        timing.data = timing.grad = timing.update = 0;
        taskLoss.clear();
        lossSum = 0;
        lossCount = 0;
      }
    }
    const seconds = (performance.now() - start) / 1000;
    const saved = opts.arch === 'gpt2' ? { config: configToHf(cfg), tensors: model.exportTensors() } : checkpointOf(model);
    return { cfg, hfConfig: saved.config, tensors: saved.tensors, seconds, history, final: history.at(-1)?.eval, meanLoad: loads.reduce((a, x) => a + x, 0) / Math.max(1, loads.length) };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/** Seeds of the final held-out evaluation written to the model card (progress lines use seed 0). */
const CARD_EVAL_SEEDS: readonly number[] = [1, 2, 3];

function parseOptions(argv: readonly string[]): TrainOptions {
  const spec = {
    arch: ZOO_ARCHS.join(' or '),
    seed: 'integer',
    steps: 'positive integer',
    tasks: `comma-separated tasks among ${ZOO_TASKS.join(', ')}`,
    'batch-per-task': 'positive integer',
    lr: 'positive number',
    warmup: 'integer >= 0',
    'weight-decay': 'number >= 0',
    'eval-every': 'integer >= 0',
    'eval-n': 'integer >= 0',
    out: 'folder',
    layers: 'positive integer',
    heads: 'positive integer',
    'd-model': 'positive integer',
    'n-ctx': 'positive integer',
    'kv-heads': 'positive integer dividing --heads (llama only)',
  } as const;
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.keys(spec).map((k) => [k, { type: 'string' as const }])),
    strict: true,
  });
  const num = (key: keyof typeof spec, fallback: number, ok: (v: number) => boolean): number => {
    const raw = values[key];
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v) || !ok(v)) throw new CircuitryError(`--${key}: expected a ${spec[key]}, got '${raw}'`);
    return v;
  };
  const int = (v: number) => Number.isSafeInteger(v);
  const arch = values.arch ?? DEFAULTS.arch;
  if (!(ZOO_ARCHS as readonly string[]).includes(arch)) throw new CircuitryError(`--arch: expected ${spec.arch}, got '${arch}'`);
  if (arch !== 'llama' && values['kv-heads'] !== undefined) throw new CircuitryError(`--kv-heads: only for --arch llama (GPT-2 has one key/value head per head)`);
  const opts: TrainOptions = {
    arch: arch as ZooArch,
    seed: num('seed', DEFAULTS.seed, int),
    steps: num('steps', DEFAULTS.steps, (v) => int(v) && v > 0),
    tasks: values.tasks === undefined ? DEFAULTS.tasks : parseTasks(values.tasks),
    batchPerTask: num('batch-per-task', DEFAULTS.batchPerTask, (v) => int(v) && v > 0),
    lr: num('lr', DEFAULTS.lr, (v) => v > 0),
    warmup: num('warmup', DEFAULTS.warmup, (v) => int(v) && v >= 0),
    weightDecay: num('weight-decay', DEFAULTS.weightDecay, (v) => v >= 0),
    evalEvery: num('eval-every', DEFAULTS.evalEvery, (v) => int(v) && v >= 0),
    evalN: num('eval-n', DEFAULTS.evalN, (v) => int(v) && v >= 0),
    out: values.out === undefined ? DEFAULT_OUT[arch as ZooArch] : resolve(values.out),
    layers: num('layers', DEFAULTS.layers, (v) => int(v) && v > 0),
    heads: num('heads', DEFAULTS.heads, (v) => int(v) && v > 0),
    dModel: num('d-model', DEFAULTS.dModel, (v) => int(v) && v > 0),
    nCtx: num('n-ctx', DEFAULTS.nCtx, (v) => int(v) && v > 0),
    kvHeads: num('kv-heads', DEFAULTS.kvHeads, (v) => int(v) && v > 0),
  };
  if (opts.arch === 'llama' && opts.heads % opts.kvHeads !== 0) throw new CircuitryError(`--kv-heads (${opts.kvHeads}) must divide --heads (${opts.heads})`);
  if (opts.dModel % opts.heads !== 0) throw new CircuitryError(`--d-model (${opts.dModel}) must be divisible by --heads (${opts.heads})`);
  return opts;
}

function parseTasks(raw: string): ZooTask[] {
  const tasks = raw.split(',').map((t) => t.trim());
  for (const t of tasks) {
    if (!(ZOO_TASKS as readonly string[]).includes(t)) throw new CircuitryError(`--tasks: unknown task '${t}' (expected a comma-separated list of ${ZOO_TASKS.join(', ')})`);
  }
  if (new Set(tasks).size !== tasks.length) throw new CircuitryError(`--tasks: '${raw}' names a task twice`);
  return tasks as ZooTask[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function modelCard(opts: TrainOptions, res: TrainResult, backend: string, final: EvalResult | undefined): string {
  const c = res.cfg;
  const params = [...res.tensors.values()].reduce((a, t) => a + t.data.length, 0);
  const lines = [
    `# ${basename(opts.out)}`,
    '',
    `one of circuitry's built-in trained models: a small ${opts.arch === 'llama' ? 'Llama-style (rotary, RMSNorm, SwiGLU, grouped-query attention)' : 'GPT-2-style'} transformer trained by \`npm run train:zoo\``,
    '(scripts/train-zoo.ts) on a mixture of small-vocabulary IOI, greater-than and induction prompts.',
    'Its circuits are learned, not planted: nothing in the weights was set by hand.',
    '',
    '## Config',
    '',
    '| field | value |',
    '| --- | --- |',
    `| layers | ${c.nLayers} |`,
    ...(c.nKvHeads === c.nHeads ? [`| heads | ${c.nHeads} (d_head ${c.dHead}) |`] : [`| heads | ${c.nHeads} query heads sharing ${c.nKvHeads} key/value heads (grouped-query, d_head ${c.dHead}) |`]),
    `| d_model | ${c.dModel} |`,
    c.gatedMlp ? `| d_mlp | ${c.dMlp} (SwiGLU: silu(gate) · up) |` : `| d_mlp | ${c.dMlp} (GELU, gelu_new) |`,
    c.positional === 'rotary' ? `| n_ctx | ${c.nCtx} (rotary positions, θ = ${c.rotaryBase}) |` : `| n_ctx | ${c.nCtx} (learned positions) |`,
    `| vocabulary | ${c.dVocab} words (vocab.json = ZOO_VOCAB of src/zoo/vocab.ts at training time) |`,
    c.normalization === 'RMS' ? `| normalization | RMSNorm (pre-norm, final norm) |` : `| normalization | LayerNorm (pre-LN, final ln_f) |`,
    `| embeddings | ${c.tiedEmbeddings ? 'tied (W_U = W_E^T)' : 'untied (lm_head)'} |`,
    `| parameters | ${params.toLocaleString('en-US')} |`,
    '',
    '## Data',
    '',
    'Prompts come from the task generators of src/tasks on the zoo word vocabulary (scripts/zoo-data.ts):',
    '',
    '- **ioi**: the generator defaults (8 templates, ABBA and BABA). Trained on every next token of the text and,',
    `  ${ANSWER_WEIGHT} times as strongly, on the answer (the IO name) at the last position.`,
    `- **greater-than**: "The NOUN lasted from the year XX YY to the year XX", centuries ${GT_TRAIN_CENTURIES[0]}..${GT_TRAIN_CENTURIES.at(-1)}, YY from 01 to 98`,
    `  (so the "01" corruption is a prompt it knows). Trained like IOI; the answer target is uniform over the years > YY.`,
    `- **induction**: L distinct abstract tokens (L = ${INDUCTION_TRAIN_LENGTHS.min}..${INDUCTION_TRAIN_LENGTHS.max}) and their repeat cut one token short;`,
    '  trained at every position of the repeat on the token that followed it the first time.',
    '',
    'Half the prompts start with `<bos>`; the model works with and without it. Training uses generator seeds',
    `from ${TRAIN_SEED_BASE.toLocaleString('en-US')} upwards only; every evaluation below uses seeds below that (held out).`,
    '',
    '## Training',
    '',
    `- seed ${opts.seed} (initialisation and data order); ${opts.steps} steps of ${opts.batchPerTask} prompts per task (${opts.steps * opts.batchPerTask * ZOO_TASKS.length} prompts)`,
    `- AdamW (β 0.9/0.98, weight decay ${opts.weightDecay} on matrices), peak learning rate ${opts.lr}, ${opts.warmup} warmup steps, cosine decay to a tenth; gradients clipped at norm 1`,
    `- loss: cross-entropy at the trained positions (each task's loss the weighted mean over its positions), the three tasks weighted equally`,
    `- time: ${res.seconds.toFixed(0)} s on the ${backend} backend (one thread; ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, shared: mean load average ${res.meanLoad.toFixed(1)} during training)`,
    '- deterministic: the same seed gives the same weights (tfjs on wasm, one machine)',
    '',
  ];
  if (final) {
    lines.push(
      '## Accuracy on held-out seeds',
      '',
      `Generator defaults (IOI corruption abc; greater-than century 17, corruption 01; induction L = 8), seeds ${final.seeds.join(', ')},`,
      `with and without \`<bos>\`. Accuracy: the top-1 next token is in the answer set. Logit difference:`,
      'log Σp(answers) − log Σp(wrongs) at the last position (DESIGN.md).',
      '',
      '| task | prompts | accuracy | p(answer) | logit diff (clean) | logit diff (corrupted) |',
      '| --- | --- | --- | --- | --- | --- |',
      ...ZOO_TASKS.map((t) => {
        const e = final.tasks[t];
        return `| ${t} | ${e.n} | ${pct(e.accuracy)} | ${e.cleanProb.toFixed(3)} | ${e.cleanLogitDiff.toFixed(2)} | ${e.corruptedLogitDiff.toFixed(2)} |`;
      }),
      '',
    );
  }
  const curve = res.history.filter((h) => h.eval);
  if (curve.length > 0) {
    lines.push('## Training curve (held-out seed 0)', '', `| step | loss | ${ZOO_TASKS.join(' | ')} |`, `| --- | --- | ${ZOO_TASKS.map(() => '---').join(' | ')} |`);
    for (const h of curve) lines.push(`| ${h.step} | ${h.loss.toFixed(4)} | ${ZOO_TASKS.map((t) => pct(h.eval!.tasks[t].accuracy)).join(' | ')} |`);
    lines.push('');
  }
  const shape = ([['layers', opts.layers, DEFAULTS.layers], ['heads', opts.heads, DEFAULTS.heads], ['d-model', opts.dModel, DEFAULTS.dModel], ['kv-heads', opts.arch === 'llama' ? opts.kvHeads : DEFAULTS.kvHeads, DEFAULTS.kvHeads]] as const)
    .filter(([, v, dflt]) => v !== dflt)
    .map(([flag, v]) => ` --${flag} ${v}`)
    .join('');
  const arch = opts.arch === DEFAULTS.arch ? '' : ` --arch ${opts.arch}`;
  const out = opts.out === DEFAULT_OUT[opts.arch] ? '' : ` --out src/zoo/trained/${basename(opts.out)}`;
  lines.push('## Reproduce', '', '```', `npm run train:zoo -- ${arch.slice(1)}${arch ? ' ' : ''}--seed ${opts.seed} --steps ${opts.steps}${shape}${out}`, '```', '');
  return lines.join('\n');
}

/** Writes the model folder atomically: a temporary folder beside it, then a rename. */
function writeModelFolder(opts: TrainOptions, res: TrainResult, backend: string, final: EvalResult | undefined): void {
  const tmp = `${opts.out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, 'config.json'), `${JSON.stringify(res.hfConfig, null, 2)}\n`);
    writeFileSync(join(tmp, 'vocab.json'), `${JSON.stringify(ZOO_VOCAB.slice(0, res.cfg.dVocab))}\n`);
    // metadata holds nothing that varies between runs, so the same seed gives the same bytes
    writeSafetensors(join(tmp, 'model.safetensors'), res.tensors, { format: 'pt', trainer: 'circuitry scripts/train-zoo.ts', seed: String(opts.seed), steps: String(opts.steps) });
    writeFileSync(join(tmp, 'MODEL_CARD.md'), modelCard(opts, res, backend, final));
    if (existsSync(opts.out)) rmSync(opts.out, { recursive: true });
    renameSync(tmp, opts.out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const backend = await initBackend();
  const cfg = zooConfig(opts);
  console.log(`train-zoo: ${opts.arch}, ${cfg.nLayers} layers, ${cfg.nHeads} heads (${cfg.nKvHeads} key/value), d_model ${cfg.dModel}, vocab ${cfg.dVocab}, n_ctx ${cfg.nCtx}; seed ${opts.seed}, ${opts.steps} steps; backend ${backend}`);
  const res = train(opts);
  let final: EvalResult | undefined;
  if (opts.evalN > 0) {
    const model = modelFromTensors(res.hfConfig, res.tensors, 'trained');
    try {
      final = evaluateZooModel(model, { n: opts.evalN, seeds: CARD_EVAL_SEEDS });
    } finally {
      model.dispose();
    }
    for (const t of ZOO_TASKS) {
      const e = final.tasks[t];
      console.log(`held-out ${t}: accuracy ${pct(e.accuracy)}, logit diff clean ${e.cleanLogitDiff.toFixed(2)} / corrupted ${e.corruptedLogitDiff.toFixed(2)} (${e.n} prompts)`);
    }
  }
  writeModelFolder(opts, res, backend, final);
  console.log(`train-zoo: trained in ${res.seconds.toFixed(0)} s; wrote ${opts.out}`);
}

main().catch((e: unknown) => {
  if (e instanceof CircuitryError) {
    console.error(`train-zoo: ${e.message}`);
  } else {
    console.error(e);
  }
  process.exitCode = 1;
});
