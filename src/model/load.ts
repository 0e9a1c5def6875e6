import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeModel, modelFromTensors } from './arch/index.js';
import { deferredModel } from './deferred.js';
import { Transformer } from './transformer.js';
import { readCheckpointFolder, readJsonFile, hashFiles } from './checkpoint.js';
import { configFromHf } from './config.js';
import { resolveModelPath } from './hub.js';
import { type Tokenizer, WordTokenizer, tokenizerForFolder } from './tokenizer.js';
import { zooModel, zooModels } from '../zoo/index.js';
import '../zoo/builtin.js';
import { CircuitryError } from '../errors.js';
import { createHash } from 'node:crypto';
import { type HostTensor, parseSafetensors, safetensorsBytes } from './safetensors-bytes.js';

// fs-free (the live report's browser bundle imports it from there)

/** A runnable model with its tokenizer and where it came from. */
export interface LoadedModel {
  readonly name: string;
  readonly model: Transformer;
  readonly tokenizer: Tokenizer;
  readonly source: { kind: 'zoo' | 'local' | 'hub'; dir?: string; hash: string };
  /** Zoo models: the tasks they solve and (planted ones) their ground truth. */
  readonly zoo?: ReturnType<typeof zooModel>;
  /**
   * With `shareWeights`: the weights as safetensors bytes in one SharedArrayBuffer, with the
   * config they load with, for pool workers (src/scale) to build the same model without a copy.
   */
  readonly shared?: SharedWeights;
}

/**
 * The weights as safetensors bytes in one SharedArrayBuffer, which pool workers build their
 * models from. Once every worker has built its model the buffer is only a spare copy of the
 * weights' size, so a model read from a checkpoint folder lets it go (`release`): a worker that
 * comes later (one replacing a dead worker) reads the folder instead, and so does this process
 * if it builds its own model after all.
 */
export class SharedWeights {
  private buffer: SharedArrayBuffer | undefined;
  constructor(
    readonly config: unknown,
    buffer: SharedArrayBuffer,
    readonly source: string,
    /** The checkpoint folder the bytes were read from, when there is one. */
    readonly dir?: string,
  ) {
    this.buffer = buffer;
  }

  /** The bytes, until released. */
  get bytes(): SharedArrayBuffer | undefined {
    return this.buffer;
  }

  /** Drops the buffer when the folder can give the weights again; whether it did. */
  release(): boolean {
    if (this.dir === undefined) return false;
    this.buffer = undefined;
    return true;
  }

  /** The tensors: views of the buffer, or read from the folder (one at a time) once released. */
  tensors(): ReadonlyMap<string, HostTensor> {
    if (this.buffer) return parseSafetensors(new Uint8Array(this.buffer), this.source, { views: true });
    return readCheckpointFolder(this.dir!, { lazy: true }).tensors;
  }
}

export interface LoadOptions {
  readonly revision?: string;
  readonly log?: (message: string) => void;
  /** Keep the weights in a SharedArrayBuffer (LoadedModel.shared) for worker threads. */
  readonly shareWeights?: boolean;
}

/**
 * The model from its config and tensors; with `share`, the tensors are first written once into a
 * SharedArrayBuffer and the model is built from views of it, so the host copy is that buffer.
 * A shared model is for a worker pool, whose workers build their own copies: this process's tfjs
 * copy is built on first use only (deferredModel); names and shapes are checked at once.
 */
function build(config: unknown, tensors: ReadonlyMap<string, HostTensor>, source: string, file: string, share: boolean | undefined, dir?: string): { model: Transformer; shared?: SharedWeights } {
  if (!share) return { model: modelFromTensors(config, tensors, source, { file }) };
  const shared = new SharedWeights(config, sharedBytes(tensors), source, dir);
  // checked now; built (from the buffer, or the folder once released) on first use
  const { cfg } = describeModel(config, shared.tensors(), source, { file });
  return { model: deferredModel(cfg, () => new Transformer(cfg, describeModel(config, shared.tensors(), source, { file }).weights)), shared };
}

/**
 * The tensors as safetensors bytes written once into a new SharedArrayBuffer. (A function of its
 * own: a closure over the buffer in build()'s scope would keep it alive after release.)
 */
function sharedBytes(tensors: ReadonlyMap<string, HostTensor>): SharedArrayBuffer {
  let buffer: SharedArrayBuffer | undefined;
  safetensorsBytes(tensors, undefined, (n) => new Uint8Array((buffer = new SharedArrayBuffer(n))));
  return buffer!;
}

/**
 * Loads a model named by a zoo name, a local HuggingFace folder, or a hub id (through the
 * HuggingFace cache, downloading when online).
 */
export async function loadModel(name: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const zoo = zooModel(name);
  if (zoo && !existsSync(name)) {
    const tokenizer = new WordTokenizer(zoo.vocab);
    if (zoo.build) {
      const { config, tensors } = zoo.build();
      const hash = createHash('sha256');
      for (const key of [...tensors.keys()].sort()) hash.update(key).update(new Uint8Array(tensors.get(key)!.data.buffer));
      const { model, shared } = build(config, tensors, `zoo model ${name}`, `zoo model ${name}`, opts.shareWeights);
      return { name, model, tokenizer, source: { kind: 'zoo', hash: hash.digest('hex').slice(0, 16) }, zoo, shared };
    }
    const ckpt = readCheckpointFolder(zoo.dir!, { lazy: opts.shareWeights });
    const { model, shared } = build(ckpt.configRaw, ckpt.tensors, zoo.dir!, join(zoo.dir!, 'config.json'), opts.shareWeights, zoo.dir);
    return { name, model, tokenizer, source: { kind: 'zoo', dir: zoo.dir, hash: hashFiles(ckpt.files).slice(0, 16) }, zoo, shared };
  }
  let resolved;
  try {
    resolved = await resolveModelPath(name, { revision: opts.revision, log: opts.log });
  } catch (e) {
    if (e instanceof CircuitryError && !existsSync(name)) {
      const builtIn = zooModels().map((m) => m.name).join(', ');
      throw new CircuitryError(`${e.message}\n(built-in models: ${builtIn}; see 'circuitry models')`);
    }
    throw e;
  }
  const ckpt = readCheckpointFolder(resolved.dir, { lazy: opts.shareWeights });
  const { model, shared } = build(ckpt.configRaw, ckpt.tensors, resolved.dir, join(resolved.dir, 'config.json'), opts.shareWeights, resolved.dir);
  const tokenizer = tokenizerForFolder(resolved.dir, ckpt.config.dVocab);
  return { name, model, tokenizer, source: { kind: resolved.kind, dir: resolved.dir, hash: hashFiles(ckpt.files).slice(0, 16) }, shared };
}

/**
 * The tokenizer of a model without loading its weights (`circuitry tokenize`): a zoo model's
 * vocabulary, or the folder's tokenizer.json / r50k / ids as loadModel would choose it.
 */
export async function loadTokenizer(name: string, opts: LoadOptions = {}): Promise<{ tokenizer: Tokenizer; dir?: string }> {
  const zoo = zooModel(name);
  if (zoo && !existsSync(name)) return { tokenizer: new WordTokenizer(zoo.vocab) };
  const resolved = await resolveModelPath(name, { revision: opts.revision, log: opts.log });
  const configPath = join(resolved.dir, 'config.json');
  const cfg = configFromHf(readJsonFile(configPath), configPath);
  return { tokenizer: tokenizerForFolder(resolved.dir, cfg.dVocab), dir: resolved.dir };
}
