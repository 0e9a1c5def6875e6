import type { LoadedModel } from '../model/load.js';
import { type TaskDataset, generateTask, loadJsonlDataset, checkDataset, datasetHash } from '../tasks/index.js';
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

export function resolveDataset(loaded: LoadedModel, spec: DataSource): TaskDataset {
  if (spec.dataset) {
    const ds = loadJsonlDataset(spec.dataset, loaded.tokenizer);
    checkDataset(ds, loaded.model.cfg.dVocab, spec.dataset);
    return ds;
  }
  if (!spec.task) throw new CircuitryError('give a task or a dataset');
  const { name, n, seed, options = {} } = spec.task;
  const zoo = loaded.zoo;
  if (zoo?.dataset && zoo.tasks.includes(name)) {
    const d = zoo.dataset(name, { n, seed });
    const seqLen = d.clean[0]?.length ?? 0;
    const show = (ids: readonly number[]) => loaded.tokenizer.decode(ids);
    return {
      name,
      source: `zoo:${zoo.name}:${name}(n=${n}, seed=${seed})`,
      ...d,
      seqLen,
      text: d.clean.slice(0, 8).map((c, i) => ({ clean: show(c), corrupted: show(d.corrupted[i]), answer: show(d.answers[i]), wrong: show(d.wrongs[i]) })),
    };
  }
  const ds = generateTask(name, loaded.tokenizer, { n, seed, ...options });
  checkDataset(ds, loaded.model.cfg.dVocab, `task ${name}`);
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
  return { name: data.name, hash: datasetHash(data).slice(0, 16), n_examples: data.clean.length, seq_len: data.seqLen, spec: datasetSpec(source) };
}

/** A spec in words, for the line that says which dataset a command used. */
export function describeSpec(spec: DatasetSpec): string {
  if ('file' in spec) return spec.file;
  const { name, n, seed, options } = spec.task;
  const extra = options && Object.keys(options).length ? ` ${JSON.stringify(options)}` : '';
  return `task ${name} (n ${n}, seed ${seed}${extra})`;
}
