import * as tf from '@tensorflow/tfjs';
import { backendName } from '../backend/index.js';
import { datasetHash, type TaskDataset } from '../tasks/index.js';
import { VERSION } from '../version.js';
import type { CircuitMeta } from './circuit-types.js';

/**
 * The provenance every output file carries, built here and nowhere else: the tool and its
 * versions, when, the backend that ran, the model and dataset with their hashes, and timings.
 * Circuit files spread it into `meta`; the other JSON outputs (sweeps, traces, directions,
 * steering) put it at their top level.
 */
export interface Provenance {
  tool: { name: 'circuitry'; version: string };
  versions: Record<string, string>;
  created: string;
  backend: string;
  model?: { name: string; hash?: string; source?: string };
  dataset?: NonNullable<CircuitMeta['dataset']>;
  timings?: Record<string, number>;
}

/** The dataset's entry: name, where it came from, the hash of its token ids, its size. */
export function datasetProvenance(ds: TaskDataset): NonNullable<CircuitMeta['dataset']> {
  return { name: ds.name, source: ds.source, hash: datasetHash(ds), n_examples: ds.clean.length, seq_len: ds.seqLen };
}

export function provenance(input: {
  model?: { name: string; source: { kind: string; hash: string } };
  dataset?: TaskDataset;
  timings?: Record<string, number>;
} = {}): Provenance {
  return {
    tool: { name: 'circuitry', version: VERSION },
    versions: { circuitry: VERSION, tfjs: tf.version.tfjs, node: process.versions.node },
    created: new Date().toISOString(),
    backend: backendName(),
    ...(input.model ? { model: { name: input.model.name, hash: input.model.source.hash, source: input.model.source.kind } } : {}),
    ...(input.dataset ? { dataset: datasetProvenance(input.dataset) } : {}),
    ...(input.timings ? { timings: input.timings } : {}),
  };
}
