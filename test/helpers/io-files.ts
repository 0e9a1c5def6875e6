import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { writeSafetensors, type HostTensor } from '../../src/model/safetensors.js';
import { TINY } from './fixtures.js';

/** The tiny GPT-2 HF folder (config.json + model.safetensors, no tokenizer). */
export const FIXTURE_MODEL = join(TINY, 'model');

/** A fresh temp folder, removed after the current test. */
const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
export function tempDir(prefix = 'circuitry-io-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Raw safetensors bytes from a header object and data bytes (for malformed-file tests). */
export function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Buffer {
  const text = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([len, text, data]);
}

/** Little-endian uint16 words as bytes (F16 / BF16 payloads). */
export function u16Bytes(words: readonly number[]): Uint8Array {
  const b = Buffer.alloc(2 * words.length);
  words.forEach((w, i) => b.writeUInt16LE(w, 2 * i));
  return new Uint8Array(b);
}

/**
 * Writes `tensors` as `nShards` safetensors shards plus model.safetensors.index.json into dir,
 * tensors dealt out round-robin in name order. Returns the shard file names.
 */
export function writeSharded(dir: string, tensors: ReadonlyMap<string, HostTensor>, nShards: number): string[] {
  const names = [...tensors.keys()].sort();
  const shardNames = Array.from({ length: nShards }, (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(nShards).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  shardNames.forEach((shard, s) => {
    const part = new Map<string, HostTensor>();
    names.forEach((n, i) => {
      if (i % nShards === s) {
        part.set(n, tensors.get(n)!);
        weightMap[n] = shard;
      }
    });
    writeSafetensors(join(dir, shard), part);
  });
  const index = { metadata: { total_size: 0 }, weight_map: weightMap };
  writeFileJson(join(dir, 'model.safetensors.index.json'), index);
  return shardNames;
}

export function writeFileJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2));
}
