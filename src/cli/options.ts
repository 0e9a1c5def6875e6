import type { WorkerCount } from '../scale/index.js';
import type { Argv, Options } from 'yargs';
import { CircuitryError } from '../errors.js';
import { UsageError } from './usage.js';
import { flagName, inFile, outFile, readNumber, str } from './flags.js';

/**
 * Shared option groups, composed by the commands that take them, and the typed readers that
 * check them before anything heavy loads. Every command that takes pairs takes them the same way:
 * `--dataset FILE` or `--task NAME [-n N] [--seed S] [--task-option KEY=VALUE …]`.
 */

/**
 * A numeric flag. It has no yargs type on purpose: yargs' number type turns `abc` into NaN and
 * an empty value into 0, so the text as typed goes to flags.ts readNumber, the one check.
 */
export function numberFlag(describe: string, fallback?: number): Options {
  return { requiresArg: true, describe, ...(fallback !== undefined ? { default: fallback } : {}) };
}

/**
 * --workers N: worker threads, each with its own tfjs-wasm and the weights shared (the default
 * is the core count; 1 runs in-process). Checked while the command line is parsed, so a bad
 * value is a usage error (exit 2) before anything loads.
 */
export function workersOption<T>(y: Argv<T>) {
  return y
    .option('workers', { ...numberFlag('worker threads, each with its own tfjs-wasm, the weights shared; results equal --workers 1 (1 = in this process)'), defaultDescription: 'the core count for models of 20M weights or more, else 1' })
    .check((argv) => {
      readWorkers(argv);
      return true;
    });
}

/** The --workers count, checked (a positive integer); 'auto' when absent (scale/index.ts resolveWorkers). */
export function readWorkers(args: Record<string, unknown>): WorkerCount {
  try {
    return readNumber(args, 'workers', 'count') ?? 'auto';
  } catch (e) {
    throw e instanceof CircuitryError ? new UsageError(e.message) : e;
  }
}

export function modelOption<T>(y: Argv<T>) {
  return y.option('model', { type: 'string', demandOption: true, describe: 'zoo name (circuitry models), HuggingFace folder, or hub id (e.g. gpt2)' });
}

export const DEFAULT_N = 64;
export const DEFAULT_SEED = 0;

/** --dataset or --task with -n, --seed and --task-option. */
export function dataOptions<T>(y: Argv<T>) {
  return (
    y
      // --task-option repeats; with this, any other flag given twice is an error (flags.ts str)
      // rather than silently taking its last value
      .parserConfiguration({ 'duplicate-arguments-array': true })
      .option('dataset', { type: 'string', requiresArg: true, describe: 'JSONL file of {"clean", "corrupted", "answer", "wrong"} pairs (circuitry tasks NAME --out FILE writes one)' })
      .option('task', { type: 'string', requiresArg: true, describe: "built-in task instead of --dataset (see 'circuitry tasks')" })
      .option('n', { ...numberFlag('pairs to generate for --task'), defaultDescription: String(DEFAULT_N) })
      .option('seed', { ...numberFlag('seed of the --task generator'), defaultDescription: String(DEFAULT_SEED) })
      .option('task-option', { type: 'string', array: true, requiresArg: true, describe: 'a --task option as KEY=VALUE (VALUE is JSON or a word), e.g. corruption=name-swap; repeatable' })
  );
}

export function metricOption<T>(y: Argv<T>, fallback = 'logit-diff') {
  return y.option('metric', { type: 'string', default: fallback, describe: 'logit-diff | prob | logprob | accuracy | kl' });
}

/** Where a command's pairs come from, checked (the shape discovery/data.ts resolveDataset takes). */
export interface DataChoice {
  dataset?: string;
  task?: { name: string; n: number; seed: number; options: Record<string, unknown> };
}

/** `--task-option k=v` values: JSON when it parses (numbers, lists), the word otherwise. */
function taskOptions(args: Record<string, unknown>): Record<string, unknown> {
  const raw = args['task-option'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw.map(String) : [String(raw)];
  const out: Record<string, unknown> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CircuitryError(`--task-option: expected KEY=VALUE, got '${item}'`);
    const key = item.slice(0, eq).trim();
    const text = item.slice(eq + 1);
    if (key === 'n' || key === 'seed') throw new CircuitryError(`--task-option: give ${key} as ${flagName(key)}, not as a task option`);
    if (Object.hasOwn(out, key)) throw new CircuitryError(`--task-option: '${key}' given twice`);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // a bare word such as name-swap
    }
    out[key] = value;
  }
  return out;
}

/**
 * The pairs flags, checked before any model loads: exactly one of --dataset and --task (unless
 * `required` is false and neither is given), the file present, the task known, -n a positive
 * integer and --seed an integer, and no -n, --seed or --task-option beside a --dataset file.
 */
export async function readData(args: Record<string, unknown>, required = true): Promise<DataChoice | undefined> {
  const dataset = str(args, 'dataset');
  const task = str(args, 'task');
  const n = readNumber(args, 'n', 'count');
  const seed = readNumber(args, 'seed', 'integer');
  const options = taskOptions(args);
  if (dataset !== undefined && task !== undefined) throw new CircuitryError('give --dataset FILE or --task NAME, not both');
  if (dataset !== undefined) {
    for (const [key, given] of [['n', n !== undefined], ['seed', seed !== undefined], ['task-option', Object.keys(options).length > 0]] as const) {
      if (given) throw new CircuitryError(`${flagName(key)}: applies to --task; a --dataset file holds its own pairs`);
    }
    return { dataset: inFile(args, 'dataset', 'a JSONL file of pairs') };
  }
  if (task === undefined) {
    if (required) throw new CircuitryError("give the pairs: --dataset FILE.jsonl or --task NAME (see 'circuitry tasks')");
    if (n !== undefined || seed !== undefined || Object.keys(options).length > 0) throw new CircuitryError('-n, --seed and --task-option apply to --task; give --task NAME');
    return undefined;
  }
  const { checkTaskName } = await import('../tasks/catalog.js');
  checkTaskName(task);
  return { task: { name: task, n: n ?? DEFAULT_N, seed: seed ?? DEFAULT_SEED, options } };
}

/** Every output flag of a command, checked together before any work. */
export function readOutputs<K extends string>(args: Record<string, unknown>, keys: Readonly<Record<K, { required: boolean; what?: string }>>): Record<K, string | undefined> {
  const out = {} as Record<K, string | undefined>;
  for (const key of Object.keys(keys) as K[]) out[key] = outFile(args, keys[key].required, key, keys[key].what);
  return out;
}
