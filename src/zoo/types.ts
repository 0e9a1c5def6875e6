/**
 * What a built-in model provides. The zoo sits below src/model in the layering, so it describes
 * models as data (an HF config object and HF-named float32 tensors, or a folder) and the model
 * loader turns them into a runnable Transformer.
 */
export interface ZooTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A clean/corrupted dataset as token ids (all rows one length); answer sets per example. */
export interface ZooDataset {
  readonly clean: number[][];
  readonly corrupted: number[][];
  readonly answers: number[][];
  readonly wrongs: number[][];
}

export interface ZooModel {
  readonly name: string;
  /** One line for `circuitry models`. */
  readonly describe: string;
  readonly kind: 'planted' | 'trained';
  /** The word-level vocabulary (token id = index). */
  readonly vocab: readonly string[];
  /** Tasks this model solves (names in the task registry), the first being its default. */
  readonly tasks: readonly string[];
  /** Either weights built in code … */
  build?(): { config: Record<string, unknown>; tensors: Map<string, ZooTensor> };
  /** … or a folder with config.json + model.safetensors. */
  readonly dir?: string;
  /** Planted models: the ground-truth circuit per task, in MIB edge names. */
  readonly groundTruth?: Readonly<Record<string, readonly string[]>>;
  /** Planted models: their own task data, deterministic from the seed. */
  dataset?(task: string, opts: { n: number; seed: number }): ZooDataset;
}
