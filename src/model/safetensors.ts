import { closeSync, fstatSync, openSync, readSync, writeFileSync, renameSync } from 'node:fs';
import { CircuitryError } from '../errors.js';
import { type HostTensor, parseSafetensorsFrom, safetensorsBytes } from './safetensors-bytes.js';

export type { HostTensor } from './safetensors-bytes.js';

/**
 * Reads every tensor of a safetensors file, piece by piece (the file is never held whole). The
 * header is validated against the file size: a truncated file, a corrupt header, overlapping or
 * out-of-range offsets and unknown dtypes each give an error naming the file (and the tensor).
 * With `lazy`, each tensor's data is read from the file when accessed, and not kept.
 */
export function readSafetensors(path: string, opts: { lazy?: boolean } = {}): Map<string, HostTensor> {
  const open = () => {
    try {
      return openSync(path, 'r');
    } catch {
      throw new CircuitryError(`${path}: cannot open the safetensors file`);
    }
  };
  const readFrom = (fd: number, offset: number, length: number): Uint8Array => {
    const bytes = new Uint8Array(length);
    if (readSync(fd, bytes, 0, length, offset) !== length) throw new CircuitryError(`${path}: the file ended before byte ${offset + length} (changed while reading?)`);
    return bytes;
  };
  const fd = open();
  let size: number;
  try {
    size = fstatSync(fd).size;
    if (!opts.lazy) return parseSafetensorsFrom({ size, read: (offset, length) => readFrom(fd, offset, length) }, path);
  } finally {
    closeSync(fd);
  }
  // lazy: every read (the header now, a tensor's data when it is accessed) opens the file afresh
  const reopen = (offset: number, length: number) => {
    const f = open();
    try {
      return readFrom(f, offset, length);
    } finally {
      closeSync(f);
    }
  };
  return parseSafetensorsFrom({ size, read: reopen }, path, { lazy: true });
}

/** Writes float32 tensors as a safetensors file (atomically: temp file, then rename). */
export function writeSafetensors(path: string, tensors: ReadonlyMap<string, HostTensor>, metadata?: Record<string, string>): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, safetensorsBytes(tensors, metadata));
  renameSync(tmp, path);
}
