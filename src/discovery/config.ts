import { readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { METRIC_NAMES, type MetricName } from '../metrics/index.js';
import { ACDC_ORDERS, type AcdcOrder } from './order.js';
import { ATTRIBUTION_METHOD_KEYS, type AttributionMethodKey } from '../attribution/registry.js';
import { CircuitryError } from '../errors.js';

/**
 * A pipeline file (YAML): model, task or dataset, metric, screen, verify, prune, evaluate,
 * outputs. Everything but the model, the data and the output has a default, so
 *
 *   model: mini-gpt2
 *   task: ioi
 *   output: graphs/ioi.json
 *
 * runs. Paths are relative to the working directory. Validated once into the readonly
 * `PipelineConfig`.
 */
/** Screening methods are the attribution registry's. */
const SCREEN_METHODS = ATTRIBUTION_METHOD_KEYS;
export type ScreenMethod = AttributionMethodKey;

const taskSchema = z.union([
  z.string().min(1),
  z.object({ name: z.string().min(1), n: z.number().int().positive().optional(), seed: z.number().int().optional() }).catchall(z.unknown()),
]);

const schema = z
  .object({
    model: z.string().min(1),
    task: taskSchema.optional(),
    dataset: z.string().min(1).optional(),
    metric: z.enum(METRIC_NAMES).default('logit-diff'),
    batch_size: z.number().int().positive().default(32),
    /** Worker threads (default: the core count from 20M weights, else 1; 1 = in-process); --workers overrides it. */
    workers: z.number().int().positive().optional(),
    screen: z
      .object({
        method: z.enum(SCREEN_METHODS).default('eap-ig'),
        steps: z.number().int().positive().default(5),
      })
      .strict()
      .default({ method: 'eap-ig', steps: 5 }),
    verify: z
      .object({
        /** At most this many candidates, by |attribution score| (default: verifyTop of the graph's size) … */
        top: z.number().int().positive().optional(),
        /** … and only as many as hold this share of the total |score| (1 = no share limit). */
        share: z.number().gt(0).lte(1).default(1),
        /** Candidates whose real effect when patched alone (noising; with rescue also denoising) is below floor × |clean − corrupted| are dropped. */
        floor: z.number().min(0).default(0.005),
      })
      .strict()
      .default({ share: 1, floor: 0.005 }),
    prune: z
      .object({
        /** Threshold as a fraction of |M(clean) − M(corrupted)| (task metrics) … */
        tau: z.number().min(0).default(0.02),
        /** … or in the units of the faith measure when absolute. */
        absolute: z.boolean().default(false),
        faith: z.enum(['kl', 'diff', 'abs-diff']).default('abs-diff'),
        order: z.enum(ACDC_ORDERS).default('acdc'),
        /** Add back verified edges that alone restore this share of the metric when denoised (fully redundant paths that ACDC prunes to one); 0 = off. */
        rescue: z.number().min(0).max(1).default(0),
      })
      .strict()
      .default({ tau: 0.02, absolute: false, faith: 'abs-diff', order: 'acdc', rescue: 0 }),
    evaluate: z
      .object({
        faithfulness: z.boolean().default(true),
        ground_truth: z.string().optional(),
      })
      .strict()
      .default({ faithfulness: true }),
    output: z.union([z.string().min(1), z.object({ graph: z.string().min(1), report: z.string().min(1).optional() }).strict()]),
  })
  .strict()
  .refine((c) => (c.task === undefined) !== (c.dataset === undefined), { message: 'give exactly one of task or dataset', path: ['task'] });

export interface PipelineConfig {
  readonly file?: string;
  readonly model: string;
  readonly task?: { readonly name: string; readonly n: number; readonly seed: number; readonly options: Readonly<Record<string, unknown>> };
  readonly dataset?: string;
  readonly metric: MetricName;
  readonly batchSize: number;
  /** Worker threads, when the file sets them (the CLI's default is the core count). */
  readonly workers?: number;
  readonly screen: { readonly method: ScreenMethod; readonly steps: number };
  readonly verify: { readonly top?: number; readonly share: number; readonly floor: number };
  readonly prune: { readonly tau: number; readonly absolute: boolean; readonly faith: 'kl' | 'diff' | 'abs-diff'; readonly order: AcdcOrder; readonly rescue: number };
  readonly evaluate: { readonly faithfulness: boolean; readonly groundTruth?: string };
  readonly output: { readonly graph: string; readonly report: string };
}

/**
 * The default number of candidates to verify: a twentieth of the graph's edges, at least 100 and
 * at most 400 (100 of mini-gpt2-l4h8's 1,519; 400 of GPT-2 small's 32,491). Each candidate costs a
 * patched forward pass per direction, so the step scales with the graph. On the zoo's three tasks
 * (mini-gpt2-l4h8, 32 pairs) the circuits' CPR with 100 candidates was 1.000 / 0.976 / 0.809,
 * against 0.999 / 0.972 / 0.810 with 300, in a third of the verification time.
 */
export function verifyTop(nEdges: number): number {
  return Math.min(400, Math.max(100, Math.round(nEdges / 20)));
}

/** Validates a parsed pipeline object; messages name the file and the key. */
export function resolvePipelineConfig(raw: unknown, file = 'pipeline'): PipelineConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CircuitryError(`${file}: expected a mapping with at least model, task (or dataset) and output`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new CircuitryError(`${file}: invalid pipeline config\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  let task: PipelineConfig['task'];
  if (c.task !== undefined) {
    const t = typeof c.task === 'string' ? { name: c.task } : c.task;
    const { name, n, seed, ...options } = t as { name: string; n?: number; seed?: number };
    task = { name, n: n ?? 64, seed: seed ?? 0, options };
  }
  const graph = typeof c.output === 'string' ? c.output : c.output.graph;
  const report = typeof c.output === 'string' || !c.output.report ? join('reports', `${basename(graph, extname(graph))}.html`) : c.output.report;
  return {
    file,
    model: c.model,
    task,
    dataset: c.dataset,
    metric: c.metric,
    batchSize: c.batch_size,
    ...(c.workers !== undefined ? { workers: c.workers } : {}),
    screen: c.screen,
    verify: c.verify,
    prune: c.prune,
    evaluate: { faithfulness: c.evaluate.faithfulness, groundTruth: c.evaluate.ground_truth },
    output: { graph, report },
  };
}

/** Reads and validates a pipeline YAML file. */
export function readPipelineConfig(path: string): PipelineConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CircuitryError(`${path}: cannot read the pipeline file`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new CircuitryError(`${path}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return resolvePipelineConfig(raw, path);
}
