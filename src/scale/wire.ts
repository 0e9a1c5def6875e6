import { z } from 'zod';
import { CircuitryError } from '../errors.js';
import { METRIC_NAMES } from '../metrics/index.js';
import { type HookName, parseHookName } from '../model/hooks.js';
import { SWEEP_KINDS } from '../patching/sweeps.js';
import { TRACE_KINDS } from '../interventions/causal-tracing.js';
import { VERSION } from '../version.js';
import { ATTRIBUTION_METHOD_KEYS } from '../attribution/registry.js';
import { GRADIENT_CHOICES } from '../attribution/types.js';
import type { WorkerReply, WorkerTask } from './protocol.js';

/**
 * Pool tasks and replies as JSON, for BullMQ jobs (`discover --redis`): typed arrays travel as
 * base64 of their bytes ({"$t": "f32", "b64": …}), non-finite numbers and -0 as {"$n": "NaN"}, so every
 * number comes back bit for bit. The receiving side validates what it decoded with zod and
 * never evaluates anything. A task that cannot travel (shared weights, a kind with no schema
 * here) is refused where it is sent.
 */

/** A shard job as it sits in Redis: the sender's circuitry version and the encoded task. */
export interface ShardJob {
  readonly version: string;
  readonly task: unknown;
}

/** A job that no retry can fix (malformed, another major version): the worker fails it at once. */
export class RejectedTaskError extends CircuitryError {
  constructor(message: string) {
    super(message);
    this.name = 'RejectedTaskError';
  }
}

const TYPED = { f32: Float32Array, f64: Float64Array, i32: Int32Array } as const;
type TypedTag = keyof typeof TYPED;

/** A value with its typed arrays and non-finite numbers tagged: plain JSON. */
export function toWire(value: unknown, path = 'value'): unknown {
  if (typeof value === 'number') return Object.is(value, -0) ? { $n: '-0' } : Number.isFinite(value) ? value : { $n: String(value) };
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (value === undefined) return undefined;
  if (value instanceof Float32Array || value instanceof Float64Array || value instanceof Int32Array) {
    const tag: TypedTag = value instanceof Float32Array ? 'f32' : value instanceof Float64Array ? 'f64' : 'i32';
    return { $t: tag, b64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  if (value instanceof SharedArrayBuffer || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) throw new CircuitryError(`${path}: ${value.constructor.name} cannot travel over Redis`);
  if (Array.isArray(value)) return value.map((v, i) => toWire(v, `${path}.${i}`) ?? null);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const w = toWire(v, `${path}.${k}`);
      if (w !== undefined) out[k] = w;
    }
    return out;
  }
  throw new CircuitryError(`${path}: a ${typeof value === 'object' ? value.constructor?.name ?? 'object' : typeof value} cannot travel over Redis`);
}

/** The inverse of toWire; a bad tag is refused with its path. */
export function fromWire(value: unknown, path = 'value'): unknown {
  if (Array.isArray(value)) return value.map((v, i) => fromWire(v, `${path}.${i}`));
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  if ('$n' in o) {
    if (o.$n === 'NaN') return NaN;
    if (o.$n === 'Infinity') return Infinity;
    if (o.$n === '-Infinity') return -Infinity;
    if (o.$n === '-0') return -0;
    throw new RejectedTaskError(`${path}: unknown number tag ${JSON.stringify(o.$n)}`);
  }
  if ('$t' in o) {
    const tag = o.$t as string;
    if (!Object.hasOwn(TYPED, tag)) throw new RejectedTaskError(`${path}: unknown array type ${JSON.stringify(o.$t)} (expected f32, f64 or i32)`);
    if (typeof o.b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.b64)) throw new RejectedTaskError(`${path}.b64: expected base64 text`);
    const bytes = Buffer.from(o.b64, 'base64');
    const Ctor = TYPED[tag as TypedTag];
    if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw new RejectedTaskError(`${path}.b64: ${bytes.byteLength} bytes is not a whole number of ${tag} values`);
    const copy = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(copy).set(bytes);
    return new Ctor(copy);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = fromWire(v, `${path}.${k}`);
  return out;
}

// ---- schemas (the shapes of protocol.ts) ----

const num = z.custom<number>((v) => typeof v === 'number', 'expected a number');
const int = z.number().int();
const count = z.number().int().nonnegative();
const tokens = z.array(count);
const f32 = z.instanceof(Float32Array, { message: 'expected a float32 array' });
const f64 = z.instanceof(Float64Array, { message: 'expected a float64 array' });
const i32 = z.instanceof(Int32Array, { message: 'expected an int32 array' });

const modelRef = z
  .object({ kind: z.literal('name', { message: "expected 'name' (a model travels by name)" }), key: z.string(), name: z.string().min(1), hash: z.string().optional() })
  .strict();

const graphShape = z.object({ nLayers: z.number().int().positive(), nHeads: z.number().int().positive(), hasMlp: z.boolean(), qkv: z.boolean(), parallelAttnMlp: z.boolean().optional() }).strict();

const pairData = z
  .object({ clean: z.array(tokens), corrupted: z.array(tokens), answers: z.array(tokens), wrongs: z.array(tokens) })
  .strict()
  .refine((d) => d.corrupted.length === d.clean.length && d.answers.length === d.clean.length && d.wrongs.length === d.clean.length, { message: 'clean, corrupted, answers and wrongs must have one entry per example' });

const shardSpec = z
  .object({
    key: z.string().min(1),
    graph: graphShape,
    data: pairData,
    metric: z.enum(METRIC_NAMES),
    direction: z.enum(['noise', 'denoise']),
    ablation: z.enum(['patch', 'zero', 'mean']),
    batchSize: z.number().int().positive(),
    stackBudget: z.number().positive(),
    maxRows: z.number().int().positive(),
  })
  .strict();

const sparseMask = z
  .object({ index: i32, value: f32 })
  .strict()
  .refine((m) => m.index.length === m.value.length, { message: 'index and value must have the same length' });

const backend = z.string().min(1);
const shardTask = { backend, model: modelRef, shard: shardSpec };
const simpleSweeps = SWEEP_KINDS.filter((k): k is Exclude<(typeof SWEEP_KINDS)[number], 'neurons:L'> => k !== 'neurons:L');
const sweepSpec = z.union([z.object({ kind: z.enum(simpleSweeps) }).strict(), z.object({ kind: z.literal('neurons'), layer: count }).strict()]);
const hookName = z.custom<HookName>((h) => typeof h === 'string' && parseHookName(h) !== undefined, 'expected a hook name (blocks.L.hook_…)');
const site = z.object({ name: z.string(), parts: z.array(z.object({ hook: hookName, select: z.array(count.nullable()) }).strict()) }).strict();
const targets = z.union([z.object({ kind: z.literal('edges'), edges: z.array(z.string()) }).strict(), z.object({ kind: z.literal('sites'), sites: z.array(site) }).strict()]);
const traceOptions = z
  .object({
    noisePositions: z.array(count).optional(),
    sigmaScale: num.optional(),
    sigma: num.optional(),
    samples: z.number().int().positive().optional(),
    seed: int.optional(),
    kinds: z.array(z.enum(TRACE_KINDS)).optional(),
    window: z.number().int().positive().optional(),
    metric: z.enum(['prob', 'logprob']).optional(),
    stackBudget: z.number().positive().optional(),
    share: z.object({ index: count, count: z.number().int().positive() }).strict().optional(),
  })
  .strict();

// `circuitry attribute`'s shards: a model and prompts, the attribution's settings (no callbacks)
const attributionOptions = z
  .object({
    metric: z.enum(METRIC_NAMES).optional(),
    direction: z.enum(['noise', 'denoise']).optional(),
    ablation: z.enum(['patch', 'zero', 'mean']).optional(),
    steps: z.number().int().positive().optional(),
    batchSize: z.number().int().positive().optional(),
    stepBatch: z.number().int().positive().optional(),
    passPrompts: z.number().int().positive().optional(),
    interpolation: z.enum(['run', 'eap-ig']).optional(),
    gradient: z.enum(GRADIENT_CHOICES).optional(),
  })
  .strict();
const attribution = z
  .object({
    method: z.enum(ATTRIBUTION_METHOD_KEYS),
    scores: f32,
    metric: z.enum(METRIC_NAMES),
    direction: z.enum(['noise', 'denoise']),
    ablation: z.enum(['patch', 'zero', 'mean']),
    steps: z.number().int().positive(),
    gradient: z.enum(['fused', 'split', 'mask']),
    baseMetric: num,
    patchedMetric: num.optional(),
    nExamples: z.number().int().nonnegative(),
    forwardPasses: z.number().int().nonnegative(),
    backwardPasses: z.number().int().nonnegative(),
    seconds: z.number().nonnegative(),
    warnings: z.array(z.string()),
  })
  .strict();

const taskSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('open'), ...shardTask }).strict(),
  z.object({ kind: z.literal('evaluate'), ...shardTask, masks: z.array(sparseMask), base: z.object({ key: z.string(), mask: sparseMask }).strict().optional() }).strict(),
  z.object({ kind: z.literal('attribute'), ...shardTask, method: z.string().min(1), steps: z.number().int().positive().optional() }).strict(),
  z.object({ kind: z.literal('sweep'), ...shardTask, sweep: sweepSpec, positionLabels: z.array(z.string()).optional() }).strict(),
  z.object({ kind: z.literal('per-example'), ...shardTask, targets }).strict(),
  z.object({ kind: z.literal('trace'), backend, model: modelRef, tokens, answer: tokens, options: traceOptions }).strict(),
  z.object({ kind: z.literal('attribute-data'), backend, model: modelRef, graph: graphShape, data: pairData, method: z.enum(ATTRIBUTION_METHOD_KEYS), options: attributionOptions }).strict(),
  z.object({ kind: z.literal('close'), shard: z.string() }).strict(),
  z.object({ kind: z.literal('noop') }).strict(),
]);

/** The task kinds that travel (every kind a pool runs). */
export const WIRE_KINDS = ['open', 'evaluate', 'attribute', 'sweep', 'per-example', 'trace', 'attribute-data', 'close', 'noop'] as const;

const grid = z.array(z.array(num));
const traceMap = z
  .object({ kind: z.enum(TRACE_KINDS), rows: z.array(z.string()), cols: z.array(z.string()), restored: grid, indirect: grid, recovery: grid, peak: z.object({ layer: int, position: int, value: num }).strict() })
  .strict();
const traceResult = z
  .object({
    tokens,
    answer: tokens,
    metric: z.enum(['prob', 'logprob']),
    noisePositions: z.array(count),
    sigma: num,
    sigmaScale: num.optional(),
    embeddingStd: num,
    samples: int,
    seed: int,
    window: int,
    clean: num,
    corrupted: num,
    corruptedPerSample: z.array(num),
    maps: z.array(traceMap),
    forwardPasses: count,
  })
  .strict();

const replySchema = z.discriminatedUnion('ok', [
  z
    .object({
      ok: z.literal(true),
      cachePasses: count.optional(),
      sizes: z.array(count).optional(),
      masksPerPass: z.number().int().positive().optional(),
      clean: z.array(num).optional(),
      corrupted: z.array(num).optional(),
      values: z.array(z.array(num)).optional(),
      scores: f32.optional(),
      passes: count.optional(),
      basePasses: count.optional(),
      trace: traceResult.optional(),
      perExample: z.array(f64).optional(),
      base: f64.optional(),
      attribution: attribution.optional(),
    })
    .strict(),
  z.object({ ok: z.literal(false), name: z.string(), message: z.string() }).strict(),
]);

function issues(error: z.ZodError, root: string): string {
  return error.issues.map((i) => `${[root, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
}

function majorOf(version: string): string {
  return version.split('.')[0];
}

/** A task as a shard job; a task that cannot travel is refused with the reason. */
export function encodeTask(task: WorkerTask): ShardJob {
  if (!(WIRE_KINDS as readonly string[]).includes(task.kind)) throw new CircuitryError(`a '${task.kind}' task cannot travel over Redis (its reply has no wire format); run it with --workers instead`);
  if ('model' in task && task.model.kind !== 'name') throw new CircuitryError(`a '${task.kind}' task with shared weights cannot travel over Redis: a remote worker gets the model by name`);
  return { version: VERSION, task: toWire(task, 'task') };
}

/**
 * A shard job from a queue, checked: the sender's circuitry major version, then the task's
 * shape. Throws RejectedTaskError naming the field.
 */
export function decodeTask(data: unknown, label: string): WorkerTask {
  if (data === null || typeof data !== 'object') throw new RejectedTaskError(`${label}: expected a shard job object, got ${data === null ? 'null' : typeof data}`);
  const { version, task, ...rest } = data as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length) throw new RejectedTaskError(`${label}: unknown field ${extra[0]} in a shard job`);
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+/.test(version)) throw new RejectedTaskError(`${label}: version: expected a semver version, got ${JSON.stringify(version)}`);
  if (majorOf(version) !== majorOf(VERSION)) {
    throw new RejectedTaskError(`${label}: made by circuitry ${version}, but this worker is circuitry ${VERSION}; run workers of major version ${majorOf(version)} for it`);
  }
  const parsed = taskSchema.safeParse(fromWire(task, 'task'));
  if (!parsed.success) throw new RejectedTaskError(`${label}: invalid shard task: ${issues(parsed.error, 'task')}`);
  return parsed.data satisfies WorkerTask;
}

/** A reply as a job's return value. */
export function encodeReply(reply: WorkerReply): unknown {
  return toWire(reply, 'reply');
}

/** A job's return value, checked (the coordinator trusts no queue). */
export function decodeReply(value: unknown, label: string): WorkerReply {
  let decoded: unknown;
  try {
    decoded = fromWire(value, 'reply');
  } catch (e) {
    throw new CircuitryError(`${label}: the worker returned a malformed reply (${(e as Error).message})`);
  }
  const parsed = replySchema.safeParse(decoded);
  if (!parsed.success) throw new CircuitryError(`${label}: the worker returned a malformed reply (${issues(parsed.error, 'reply')})`);
  return parsed.data satisfies WorkerReply;
}
