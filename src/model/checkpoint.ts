import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, normalize, sep } from 'node:path';
import { CircuitryError } from '../errors.js';
import { configFromHf, type ModelConfig } from './config.js';
import { readSafetensors, type HostTensor } from './safetensors.js';

/** A HuggingFace model folder read into memory: config, every tensor (float32), tokenizer file. */
export interface Checkpoint {
  readonly dir: string;
  readonly configRaw: unknown;
  readonly config: ModelConfig;
  readonly tensors: Map<string, HostTensor>;
  /** tokenizer.json when the folder has one */
  readonly tokenizerPath?: string;
  /** the files the model was read from (config, index, weights), in the order hashFiles takes */
  readonly files: string[];
}

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** Reads and parses a JSON file; a missing file or bad JSON is an error naming it. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CircuitryError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CircuitryError(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/**
 * A shard name from an index's weight_map must stay inside the model folder: a relative path
 * without '..' (a hostile index must not make us read or, in hub.ts, write elsewhere).
 */
export function checkShardName(shard: unknown, indexFile: string, tensor: string): string {
  if (typeof shard !== 'string' || shard === '' || isAbsolute(shard) || shard.includes('\\') || normalize(shard).split(sep).includes('..')) {
    throw new CircuitryError(`${indexFile}: weight_map['${tensor}'] must be a shard file name inside the model folder, got ${JSON.stringify(shard)}`);
  }
  return shard;
}

/** The shard files an index names, in first-mention order, validated. */
export function shardsOfIndex(raw: unknown, indexFile: string): { weightMap: Map<string, string>; shards: string[] } {
  const wm = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).weight_map : undefined;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new CircuitryError(`${indexFile}: expected a 'weight_map' object of tensor name -> shard file`);
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm)) weightMap.set(tensor, checkShardName(shard, indexFile, tensor));
  if (weightMap.size === 0) throw new CircuitryError(`${indexFile}: weight_map is empty`);
  return { weightMap, shards: [...new Set(weightMap.values())] };
}

const PICKLE_FILES = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.ckpt', 'tf_model.h5', 'flax_model.msgpack'];

function noWeightsError(dir: string): CircuitryError {
  const present = PICKLE_FILES.filter((f) => existsSync(join(dir, f)));
  if (present.length > 0) {
    return new CircuitryError(
      `${dir}: has ${present.join(', ')} but no ${WEIGHTS_FILE}: circuitry reads safetensors only (it never loads pickle files). ` +
        `Convert once with Python: from transformers import AutoModelForCausalLM; ` +
        `AutoModelForCausalLM.from_pretrained('${dir}').save_pretrained('${dir}', safe_serialization=True)`,
    );
  }
  return new CircuitryError(`${dir}: no ${WEIGHTS_FILE} or ${INDEX_FILE} in the model folder (expected a HuggingFace folder with ${CONFIG_FILE} and safetensors weights)`);
}

/**
 * Reads a HuggingFace model folder: config.json, then model.safetensors or the shards listed in
 * model.safetensors.index.json. Pickle checkpoints are refused with instructions to convert.
 * With `lazy`, tensors read their data from the files on each access (readSafetensors).
 */
export function readCheckpointFolder(dir: string, opts: { lazy?: boolean } = {}): Checkpoint {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new CircuitryError(`${dir}: model folder does not exist`);
  }
  if (!isDir) throw new CircuitryError(`${dir}: expected a model folder (with ${CONFIG_FILE} and ${WEIGHTS_FILE}), got a file`);

  const configPath = join(dir, CONFIG_FILE);
  if (!existsSync(configPath)) {
    throw new CircuitryError(`${dir}: no ${CONFIG_FILE} in the model folder (expected a HuggingFace folder with ${CONFIG_FILE} and ${WEIGHTS_FILE})`);
  }
  const configRaw = readJsonFile(configPath);
  const config = configFromHf(configRaw, configPath);
  const files = [configPath];

  let tensors: Map<string, HostTensor>;
  const single = join(dir, WEIGHTS_FILE);
  const index = join(dir, INDEX_FILE);
  if (existsSync(single)) {
    tensors = readSafetensors(single, opts);
    files.push(single);
  } else if (existsSync(index)) {
    const { weightMap, shards } = shardsOfIndex(readJsonFile(index), index);
    files.push(index);
    tensors = new Map();
    for (const shard of shards) {
      const path = join(dir, shard);
      if (!existsSync(path)) throw new CircuitryError(`${index}: shard '${shard}' is missing from ${dir}`);
      for (const [name, t] of readSafetensors(path, opts)) {
        const owner = weightMap.get(name);
        // a tensor the index assigns to another shard is a duplicate: the index decides
        if (owner !== undefined && owner !== shard) continue;
        if (tensors.has(name)) throw new CircuitryError(`${path}: tensor '${name}' also appears in an earlier shard`);
        tensors.set(name, t);
      }
      files.push(path);
    }
    for (const [name, shard] of weightMap) {
      if (!tensors.has(name)) throw new CircuitryError(`${index}: tensor '${name}' should be in shard '${shard}', but that shard does not contain it`);
    }
  } else {
    throw noWeightsError(dir);
  }

  const tok = join(dir, TOKENIZER_FILE);
  return { dir, configRaw, config, tensors, ...(existsSync(tok) ? { tokenizerPath: tok } : {}), files };
}

/**
 * A provenance hash: sha256 over each file's base name, byte length and contents, in the given
 * order, streamed in 1 MiB chunks. Folder locations do not enter it, so the same model in the
 * HF cache and in a local copy hashes the same. Returns lowercase hex.
 */
export function hashFiles(paths: readonly string[]): string {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(1 << 20);
  for (const path of paths) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      throw new CircuitryError(`${path}: cannot open the file to hash it`);
    }
    try {
      const size = fstatSync(fd).size;
      // the length prefix keeps file boundaries unambiguous
      hash.update(`${basename(path)}\0${size}\0`);
      let pos = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        pos += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}

