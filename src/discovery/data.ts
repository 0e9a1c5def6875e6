import type { LoadedModel } from '../model/load.js';
import { type TaskDataset, loadJsonlDataset, checkDataset } from '../tasks/index.js';
import { taskDataset } from '../tasks/catalog.js';
import { CircuitryError } from '../errors.js';

/** Where a run's pairs come from: a JSONL file, or a built-in task with its size, seed and options. */
export interface DataSpec {
  dataset?: string;
  task?: { name: string; n: number; seed: number; options?: Readonly<Record<string, unknown>> };
}

/**
 * The dataset a run uses: a JSONL file, a planted zoo model's own task data, or a built-in task
 * generated for the model's tokenizer.
 */
export function resolveDataset(loaded: LoadedModel, spec: DataSpec): TaskDataset {
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
