import type { LoadedModel } from '../model/load.js';
import { type TaskDataset, generateTask, loadJsonlDataset, checkDataset } from '../tasks/index.js';
import { CircuitryError } from '../errors.js';

/**
 * The dataset a run uses: a JSONL file, a planted zoo model's own task data, or a built-in task
 * generated for the model's tokenizer.
 */
export function resolveDataset(loaded: LoadedModel, spec: { dataset?: string; task?: { name: string; n: number; seed: number; options?: Readonly<Record<string, unknown>> } }): TaskDataset {
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
