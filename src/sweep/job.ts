import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadModel, type LoadedModel } from '../model/load.js';
import { resolveDataset } from '../discovery/data.js';
import { resolvePipelineConfig, type PipelineConfig } from '../discovery/config.js';
import { runPipeline } from '../discovery/pipeline.js';
import { checkDataset, parseJsonlDataset } from '../tasks/index.js';
import { circuitFromFile, type CircuitFile } from '../graph/index.js';
import { CircuitryError } from '../errors.js';
import { VERSION } from '../version.js';
import { jobKey, majorVersion, type SweepItem } from './spec.js';

/**
 * One sweep job: what travels to a worker (plain data, validated on arrival, never evaluated)
 * and what comes back (the circuit JSON and its timings). Every executor — in-process, local
 * child processes, BullMQ workers — runs a job through `runJob`, so their outputs are the same.
 */

const MAX_DATASET_BYTES = 64 * 1024 * 1024;

const payloadSchema = z
  .object({
    version: z.string().regex(/^\d+\.\d+\.\d+/, 'expected a semver version'),
    key: z.string().regex(/^run-[0-9a-f]{20}$/),
    name: z.string().regex(/^[A-Za-z0-9._=+-]+$/),
    pipeline: z.record(z.string(), z.unknown()),
    datasetText: z.string().max(MAX_DATASET_BYTES).optional(),
  })
  .strict();

export type JobPayload = z.infer<typeof payloadSchema>;

export interface JobResult {
  readonly key: string;
  readonly name: string;
  readonly circuit: CircuitFile;
  /** Wall seconds: loading the model (0 when cached), running the pipeline, in all. */
  readonly seconds: { readonly load: number; readonly run: number; readonly total: number };
  /** host:pid of the process that ran it. */
  readonly worker: string;
}

export function jobPayload(item: SweepItem): JobPayload {
  return { version: VERSION, key: item.key, name: item.name, pipeline: { ...item.pipeline }, datasetText: item.datasetText };
}

/** Thrown for a job that no retry can fix (bad payload, other major version): BullMQ fails it at once. */
export class RejectedJobError extends CircuitryError {
  constructor(message: string) {
    super(message);
    this.name = 'RejectedJobError';
  }
}

/**
 * Validates a payload from outside (a queue, a child process): shape, circuitry major version,
 * the pipeline by the YAML schema, and the key against the content, so an id always means one config.
 */
export function checkPayload(data: unknown, label: string): { payload: JobPayload; config: PipelineConfig } {
  const version = (data as { version?: unknown } | null)?.version;
  if (typeof version === 'string' && majorVersion(version) !== majorVersion()) {
    throw new RejectedJobError(`${label}: made by circuitry ${version}, but this worker is circuitry ${VERSION}; run workers of major version ${majorVersion(version)} for it`);
  }
  const parsed = payloadSchema.safeParse(data);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new RejectedJobError(`${label}: invalid job payload\n${lines.join('\n')}`);
  }
  const payload = parsed.data;
  let config: PipelineConfig;
  try {
    config = resolvePipelineConfig(payload.pipeline, `${label} (${payload.name})`);
  } catch (e) {
    throw new RejectedJobError((e as Error).message);
  }
  if (config.dataset !== undefined && payload.datasetText === undefined) throw new RejectedJobError(`${label}: the pipeline names dataset ${config.dataset} but the job carries no dataset text`);
  if (jobKey(payload.pipeline, payload.datasetText) !== payload.key) throw new RejectedJobError(`${label}: the job id ${payload.key} does not match its content`);
  return { payload, config };
}

/** Loaded models kept between jobs of one process (a worker usually sees the same model again). */
export class ModelCache {
  private readonly models = new Map<string, LoadedModel>();
  constructor(private readonly capacity = 2) {}

  async get(name: string): Promise<{ loaded: LoadedModel; cached: boolean }> {
    const hit = this.models.get(name);
    if (hit) {
      this.models.delete(name);
      this.models.set(name, hit);
      return { loaded: hit, cached: true };
    }
    const loaded = await loadModel(name);
    this.models.set(name, loaded);
    while (this.models.size > this.capacity) {
      const [oldest, m] = this.models.entries().next().value as [string, LoadedModel];
      m.model.dispose();
      this.models.delete(oldest);
    }
    return { loaded, cached: false };
  }

  dispose(): void {
    this.models.forEach((m) => m.model.dispose());
    this.models.clear();
  }
}

/** Runs one job's pipeline and returns its circuit; writes nothing but a scratch checkpoint. */
export async function runJob(payload: JobPayload, config: PipelineConfig, models: ModelCache): Promise<JobResult> {
  const t0 = performance.now();
  const { loaded, cached } = await models.get(config.model);
  const t1 = performance.now();
  const data =
    payload.datasetText !== undefined && config.dataset !== undefined
      ? parseJsonlDataset(payload.datasetText, config.dataset, loaded.tokenizer)
      : resolveDataset(loaded, { task: config.task });
  if (payload.datasetText !== undefined) checkDataset(data, loaded.model.cfg.dVocab, config.dataset);
  // ACDC's checkpoint lives beside the output graph: on a worker that is a scratch folder
  const scratch = mkdtempSync(join(tmpdir(), 'circuitry-job-'));
  try {
    const local = { ...config, output: { graph: join(scratch, 'graph.json'), report: join(scratch, 'report.html') } };
    const result = await runPipeline(local, loaded, data);
    if (!result.file) throw new Error(`${payload.name}: the pipeline stopped before it finished`);
    // the file records the config as the sweep resolved it, whichever machine ran it
    const circuit: CircuitFile = { ...result.file, meta: { ...result.file.meta, config: { ...config, file: undefined } } };
    const t2 = performance.now();
    return {
      key: payload.key,
      name: payload.name,
      circuit: JSON.parse(JSON.stringify(circuit)) as CircuitFile,
      seconds: { load: cached ? 0 : (t1 - t0) / 1000, run: (t2 - t1) / 1000, total: (t2 - t0) / 1000 },
      worker: `${hostname()}:${process.pid}`,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const resultSchema = z
  .object({
    key: z.string(),
    name: z.string(),
    circuit: z.record(z.string(), z.unknown()),
    seconds: z.object({ load: z.number(), run: z.number(), total: z.number() }),
    worker: z.string(),
  })
  .strict();

/** Validates a job's return value as it comes back from a worker (the coordinator trusts no queue). */
export function checkResult(value: unknown, item: SweepItem, label: string): JobResult {
  const parsed = resultSchema.safeParse(value);
  if (!parsed.success) throw new CircuitryError(`${label}: the worker returned a malformed result (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  if (parsed.data.key !== item.key) throw new CircuitryError(`${label}: the worker returned the result of job ${parsed.data.key}`);
  const { file } = circuitFromFile(parsed.data.circuit, `${label} (${item.name})`);
  return { ...parsed.data, circuit: file };
}
