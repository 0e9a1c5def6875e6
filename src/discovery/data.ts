import type { LoadedModel } from '../model/load.js';
import { type TaskDataset, loadJsonlDataset, checkDataset, datasetHash } from '../tasks/index.js';
import { taskDataset } from '../tasks/catalog.js';
import type { CircuitMeta, DatasetSpec } from '../graph/circuit-types.js';
import { CircuitryError } from '../errors.js';

/**
 * The dataset a run uses: a JSONL file, a planted zoo model's own task data, or a built-in task
 * generated for the model's tokenizer.
 */
export interface DataSource {
  readonly dataset?: string;
  readonly task?: { readonly name: string; readonly n: number; readonly seed: number; readonly options?: Readonly<Record<string, unknown>> };
}

/** Where a run's pairs come from: a JSONL file, or a built-in task with its size, seed and options. */
export type DataSpec = DataSource;

export function resolveDataset(loaded: LoadedModel, spec: DataSource): TaskDataset {
  if (spec.dataset) {
    const ds = loadJsonlDataset(spec.dataset, loaded.tokenizer);
    checkDataset(ds, loaded.model.cfg.dVocab, spec.dataset);
    return ds;
  }
  if (!spec.task) throw new CircuitryError('give a task or a dataset');
  const ds = taskDataset({ tokenizer: loaded.tokenizer, ...(loaded.zoo ? { zoo: loaded.zoo } : {}) }, spec.task);
  checkDataset(ds, loaded.model.cfg.dVocab, `task ${spec.task.name}`);
  return ds;
}

/** The recipe that re-creates a dataset (recorded in a circuit's meta.dataset.spec). */
export function datasetSpec(source: DataSource): DatasetSpec {
  if (source.dataset) return { file: source.dataset };
  if (!source.task) throw new CircuitryError('give a task or a dataset');
  const { name, n, seed, options } = source.task;
  return { task: { name, n, seed, ...(options && Object.keys(options).length ? { options: { ...options } } : {}) } };
}

/** The inverse of datasetSpec. */
export function dataSourceOf(spec: DatasetSpec): DataSource {
  return 'file' in spec ? { dataset: spec.file } : { task: { name: spec.task.name, n: spec.task.n, seed: spec.task.seed, options: spec.task.options ?? {} } };
}

/** A circuit's meta.dataset: name, content hash, size and the recipe. */
export function datasetMeta(data: TaskDataset, source: DataSource): NonNullable<CircuitMeta['dataset']> {
  return { name: data.name, source: data.source, hash: datasetHash(data).slice(0, 16), n_examples: data.clean.length, seq_len: data.seqLen, spec: datasetSpec(source) };
}

/** A spec in words, for the line that says which dataset a command used. */
export function describeSpec(spec: DatasetSpec): string {
  if ('file' in spec) return spec.file;
  const { name, n, seed, options } = spec.task;
  const extra = options && Object.keys(options).length ? ` ${JSON.stringify(options)}` : '';
  return `task ${name} (n ${n}, seed ${seed}${extra})`;
}
