import { closeSync, fstatSync, openSync, readSync, writeFileSync, renameSync } from 'node:fs';
import { CircuitryError } from '../errors.js';
import { type HostTensor, parseSafetensorsFrom, safetensorsBytes } from './safetensors-bytes.js';

export type { HostTensor } from './safetensors-bytes.js';

/**
 * Reads every tensor of a safetensors file, piece by piece (the file is never held whole). The
 * header is validated against the file size: a truncated file, a corrupt header, overlapping or
 * out-of-range offsets and unknown dtypes each give an error naming the file (and the tensor).
 */
export function readSafetensors(path: string): Map<string, HostTensor> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new CircuitryError(`${path}: cannot open the safetensors file`);
  }
  try {
    const size = fstatSync(fd).size;
    const read = (offset: number, length: number): Uint8Array => {
      const bytes = new Uint8Array(length);
      readSync(fd, bytes, 0, length, offset);
      return bytes;
    };
    return parseSafetensorsFrom({ size, read }, path);
  } finally {
    closeSync(fd);
  }
}

/** Writes float32 tensors as a safetensors file (atomically: temp file, then rename). */
export function writeSafetensors(path: string, tensors: ReadonlyMap<string, HostTensor>, metadata?: Record<string, string>): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, safetensorsBytes(tensors, metadata));
  renameSync(tmp, path);
}
