import type { LoadedModel } from '../model/load.js';
import type { TaskDataset } from '../tasks/index.js';
import type { DataChoice } from './options.js';
import { str } from './flags.js';

/**
 * The heavy start every model command shares, after its flags are checked: the backend (printed)
 * and the model. Imported lazily by the commands, so --help and flag errors load no tfjs.
 */
export async function backendAndModel(args: Record<string, unknown>, modelName: string, opts: { shareWeights?: boolean } = {}): Promise<{ backend: string; loaded: LoadedModel }> {
  const [{ initBackend }, { loadModel }] = await Promise.all([import('../backend/index.js'), import('../model/load.js')]);
  const backend = await initBackend(str(args, 'backend'));
  console.log(`backend: ${backend}`);
  const loaded = await loadModel(modelName, { log: (m) => console.error(m), ...opts });
  return { backend, loaded };
}

/** The pairs a command runs on (checked flags from options.ts readData). */
export async function datasetFor(loaded: LoadedModel, choice: DataChoice): Promise<TaskDataset> {
  const { resolveDataset } = await import('../discovery/data.js');
  return resolveDataset(loaded, choice);
}

/** One line naming the data: where it came from and its size. */
export function describeData(ds: TaskDataset): string {
  return `${ds.source} (${ds.clean.length} pairs of ${ds.seqLen} tokens)`;
}
