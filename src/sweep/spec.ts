import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { resolvePipelineConfig, type PipelineConfig } from '../discovery/config.js';
import { CircuitryError } from '../errors.js';
import { VERSION } from '../version.js';

/**
 * A sweep file (YAML):
 *
 *   runs:                              # pipeline files, or inline pipeline configs
 *     - pipelines/planted-induction.yaml
 *     - { name: ioi-small, model: mini-gpt2, task: { name: ioi, n: 16 } }
 *   grid:                              # optional: dotted pipeline keys → lists of values
 *     prune.tau: [0.01, 0.02]
 *     task.seed: [1, 2]
 *
 * expands to every run × grid combination. Each combination is one ordinary pipeline config,
 * validated by the same schema as a pipeline YAML; the sweep decides its outputs.
 */

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const sweepSchema = z
  .object({
    runs: z.array(z.union([z.string().min(1), z.record(z.string(), z.unknown())])).min(1, 'expected at least one run'),
    grid: z.record(z.string().min(1), z.array(scalar).min(1, 'expected a non-empty list of values')).optional(),
  })
  .strict();

export type GridValue = z.infer<typeof scalar>;

/** One pipeline of a sweep: a run with one choice of grid values. */
export interface SweepItem {
  /** File stem of its outputs: the run's name and its grid values. */
  readonly name: string;
  readonly run: string;
  readonly grid: Readonly<Record<string, GridValue>>;
  /** The pipeline config as a YAML file would hold it (outputs set by the sweep). */
  readonly pipeline: Readonly<Record<string, unknown>>;
  readonly config: PipelineConfig;
  /** Text of the JSONL dataset, when the run names one: it travels with the job. */
  readonly datasetText?: string;
  /** Hash of everything that determines the result: the job id and the manifest key. */
  readonly key: string;
}

export interface SweepPlan {
  readonly file: string;
  readonly outDir: string;
  readonly gridKeys: readonly string[];
  readonly items: readonly SweepItem[];
}

const NAME = /^[A-Za-z0-9._-]+$/;

/** Reads a sweep file and expands it; every combination is validated before anything runs. */
export function readSweepPlan(file: string, outDir?: string): SweepPlan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CircuitryError(`${file}: cannot read the sweep file`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new CircuitryError(`${file}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return planSweep(raw, file, outDir ?? join('sweeps', stem(file)));
}

export function planSweep(raw: unknown, file: string, outDir: string): SweepPlan {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CircuitryError(`${file}: expected a mapping with runs: (and optionally grid:)`);
  const parsed = sweepSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new CircuitryError(`${file}: invalid sweep file\n${lines.join('\n')}`);
  }
  const grid = parsed.data.grid ?? {};
  const gridKeys = Object.keys(grid);
  for (const key of gridKeys) {
    const parts = key.split('.');
    if (parts.some((p) => p === '')) throw new CircuitryError(`${file}: grid key '${key}': expected dotted pipeline keys such as prune.tau`);
    if (parts[0] === 'output') throw new CircuitryError(`${file}: grid key '${key}': the sweep names the outputs itself`);
  }
  const labels = gridLabels(gridKeys);
  const runs = parsed.data.runs.map((r, i) => loadRun(r, i, file));
  const seen = new Map<string, number>();
  runs.forEach((r, i) => {
    const before = seen.get(r.name);
    if (before !== undefined) throw new CircuitryError(`${file}: runs ${before + 1} and ${i + 1} are both named '${r.name}'; give the inline one a different name:`);
    seen.set(r.name, i);
  });
  const combos = product(gridKeys.map((k) => grid[k]));
  const items: SweepItem[] = [];
  for (const run of runs) {
    for (const values of combos) {
      const choice: Record<string, GridValue> = {};
      gridKeys.forEach((k, j) => (choice[k] = values[j]));
      const name = [run.name, ...gridKeys.map((k, j) => `${labels[j]}=${safe(values[j])}`)].join('_');
      const pipeline = structuredClone(run.pipeline);
      for (const k of gridKeys) setDotted(pipeline, k, choice[k], `${file}: grid key '${k}' (run '${run.name}')`);
      pipeline.output = { graph: join(outDir, 'graphs', `${name}.json`), report: join(outDir, 'reports', `${name}.html`) };
      const where = gridKeys.length ? `${file}: run '${run.name}' with ${gridKeys.map((k) => `${k}=${String(choice[k])}`).join(', ')}` : `${file}: run '${run.name}'`;
      const config = resolvePipelineConfig(pipeline, where);
      const datasetText = config.dataset === undefined ? undefined : readDataset(config.dataset, where);
      items.push({ name, run: run.name, grid: choice, pipeline, config, datasetText, key: jobKey(pipeline, datasetText) });
    }
  }
  const names = new Set<string>();
  for (const item of items) {
    if (names.has(item.name)) throw new CircuitryError(`${file}: two combinations would both be named '${item.name}' (grid values that differ only in characters other than letters, digits, '.', '+' and '-'); make them differ in those`);
    names.add(item.name);
  }
  return { file, outDir, gridKeys, items };
}

/** Major version of circuitry: jobs cross machines only between equal majors. */
export function majorVersion(version: string = VERSION): string {
  return version.split('.')[0];
}

/** The job id: a hash of the pipeline config, the dataset text and circuitry's major version. */
export function jobKey(pipeline: Readonly<Record<string, unknown>>, datasetText?: string): string {
  const h = createHash('sha256').update(`circuitry ${majorVersion()}\n`).update(canonicalJson(pipeline));
  if (datasetText !== undefined) h.update('\ndataset\n').update(datasetText);
  return `run-${h.digest('hex').slice(0, 20)}`;
}

/** JSON with object keys sorted, so equal configs hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface Run {
  readonly name: string;
  readonly pipeline: Record<string, unknown>;
}

function loadRun(entry: string | Record<string, unknown>, i: number, file: string): Run {
  if (typeof entry === 'string') {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(entry, 'utf8'));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ? 'cannot read the pipeline file' : `invalid YAML (${(e as Error).message.split('\n')[0]})`;
      throw new CircuitryError(`${file}: runs[${i}]: ${entry}: ${why}`);
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CircuitryError(`${file}: runs[${i}]: ${entry}: expected a pipeline mapping`);
    const name = stem(entry);
    if (!NAME.test(name)) throw new CircuitryError(`${file}: runs[${i}]: ${entry}: the file name may hold only letters, digits, '.', '_' and '-'`);
    return { name, pipeline: raw as Record<string, unknown> };
  }
  const { name = `run${i + 1}`, ...pipeline } = entry;
  if (typeof name !== 'string' || !NAME.test(name)) throw new CircuitryError(`${file}: runs[${i}].name: expected letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
  return { name, pipeline };
}

function readDataset(path: string, where: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CircuitryError(`${where}: dataset ${path}: cannot read the file`);
  }
}

/** Sets a dotted key (`prune.tau`) in a raw pipeline object; `task.seed` on `task: ioi` makes `task: {name: ioi, seed}`. */
function setDotted(obj: Record<string, unknown>, key: string, value: GridValue, where: string): void {
  const parts = key.split('.');
  let node = obj;
  for (const [j, part] of parts.slice(0, -1).entries()) {
    let next = node[part];
    if (next === undefined) next = node[part] = {};
    else if (j === 0 && part === 'task' && typeof next === 'string') next = node[part] = { name: next };
    if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new CircuitryError(`${where}: ${parts.slice(0, j + 1).join('.')} is not a mapping`);
    node = next as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/** Short labels for grid keys in file names: the last segment, or the whole key where two share it. */
function gridLabels(keys: readonly string[]): string[] {
  const last = keys.map((k) => k.split('.').pop()!);
  return keys.map((k, i) => (last.filter((l) => l === last[i]).length > 1 ? k : last[i]));
}

function product<T>(lists: readonly (readonly T[])[]): T[][] {
  return lists.reduce<T[][]>((acc, list) => acc.flatMap((prefix) => list.map((v) => [...prefix, v])), [[]]);
}

function safe(v: GridValue): string {
  return String(v).replace(/[^A-Za-z0-9.+-]/g, '_');
}

function stem(path: string): string {
  return basename(path, extname(path));
}
