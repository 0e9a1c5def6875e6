import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type HostTensor } from '../src/model/safetensors.js';
import { CircuitryError } from '../src/errors.js';
import { tempDir, rawSafetensors, u16Bytes } from './helpers/io-files.js';

function expectError(path: string, message: string): void {
  let err: unknown;
  try {
    readSafetensors(path);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CircuitryError);
  expect((err as Error).message).toBe(message);
}

describe('safetensors round trip', () => {
  it('reads back exactly what was written, with shapes, names and metadata', () => {
    const dir = tempDir();
    const path = join(dir, 'm.safetensors');
    const tensors = new Map<string, HostTensor>([
      ['b.weight', { shape: [2, 3], data: Float32Array.from([1, -2.5, 3.25, 0, -0, 1e-30]) }],
      ['a.bias', { shape: [4], data: Float32Array.from([Infinity, -Infinity, 65504, Math.fround(Math.PI)]) }],
      ['scalar', { shape: [], data: Float32Array.from([7]) }],
      ['empty', { shape: [0, 5], data: new Float32Array(0) }],
    ]);
    writeSafetensors(path, tensors, { format: 'pt' });
    const back = readSafetensors(path);
    expect([...back.keys()].sort()).toEqual(['a.bias', 'b.weight', 'empty', 'scalar']);
    for (const [name, t] of tensors) {
      expect(back.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(back.get(name)!.data)).toEqual(Array.from(t.data));
    }
    expect(Object.is(back.get('b.weight')!.data[4], -0)).toBe(true);
    // header is JSON padded to 8 bytes, metadata kept, no temp file left behind
    const buf = readFileSync(path);
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(JSON.parse(buf.subarray(8, 8 + n).toString()).__metadata__).toEqual({ format: 'pt' });
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
  });
});

describe('safetensors dtypes', () => {
  it('decodes F16 including subnormals, infinities, NaN and -0', () => {
    const path = join(tempDir(), 'f16.safetensors');
    const words = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555, 0x0400];
    writeFileSync(path, rawSafetensors({ x: { dtype: 'F16', shape: [words.length], data_offsets: [0, 2 * words.length] } }, u16Bytes(words)));
    const x = Array.from(readSafetensors(path).get('x')!.data);
    expect(x.slice(0, 7)).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, Infinity, -Infinity]);
    expect(Number.isNaN(x[7])).toBe(true);
    expect(Object.is(x[8], -0)).toBe(true);
    expect(x[9]).toBe(0.333251953125);
    expect(x[10]).toBe(2 ** -14); // smallest normal
  });

  it('decodes BF16 as the top half of a float32', () => {
    const path = join(tempDir(), 'bf16.safetensors');
    const words = [0x3f80, 0xc040, 0x4049, 0x7f80, 0xff80, 0x0001, 0x8000, 0x3eab];
    writeFileSync(path, rawSafetensors({ y: { dtype: 'BF16', shape: [2, 4], data_offsets: [0, 16] } }, u16Bytes(words)));
    const y = readSafetensors(path).get('y')!;
    expect(y.shape).toEqual([2, 4]);
    const v = Array.from(y.data);
    expect(v.slice(0, 5)).toEqual([1, -3, 3.140625, Infinity, -Infinity]);
    expect(v[5]).toBe(Math.fround(2 ** -133)); // bf16 subnormal
    expect(Object.is(v[6], -0)).toBe(true);
    expect(v[7]).toBe(0.333984375);
  });

  it('reads a mix of dtypes at their offsets', () => {
    const path = join(tempDir(), 'mix.safetensors');
    const f32 = new Uint8Array(Float32Array.from([0.5, -8]).buffer);
    const data = new Uint8Array([...u16Bytes([0x3c00]), ...f32, ...u16Bytes([0x4000])]);
    const header = {
      __metadata__: { note: 'mixed' },
      h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
      f: { dtype: 'F32', shape: [2], data_offsets: [2, 10] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [10, 12] },
    };
    writeFileSync(path, rawSafetensors(header, data));
    const m = readSafetensors(path);
    expect([...m.keys()]).toEqual(['h', 'f', 'b']);
    expect(Array.from(m.get('h')!.data)).toEqual([1]);
    expect(Array.from(m.get('f')!.data)).toEqual([0.5, -8]);
    expect(Array.from(m.get('b')!.data)).toEqual([2]);
  });

  it('reads lazily: the header is checked at once, each tensor read from the file when accessed', () => {
    const path = join(tempDir(), 'lazy.safetensors');
    const data = new Uint8Array([...u16Bytes([0x3c00]), ...new Uint8Array(Float32Array.from([0.5, -8]).buffer)]);
    writeFileSync(path, rawSafetensors({ h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] }, f: { dtype: 'F32', shape: [2], data_offsets: [2, 10] } }, data));
    const m = readSafetensors(path, { lazy: true });
    expect(m.get('f')!.shape).toEqual([2]);
    expect(Array.from(m.get('f')!.data)).toEqual([0.5, -8]);
    expect(Array.from(m.get('h')!.data)).toEqual([1]);
    // nothing is held: a rewritten file is what the next access reads
    const f32 = new Uint8Array(Float32Array.from([3, 4]).buffer);
    writeFileSync(path, rawSafetensors({ h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] }, f: { dtype: 'F32', shape: [2], data_offsets: [2, 10] } }, new Uint8Array([...u16Bytes([0x4000]), ...f32])));
    expect(Array.from(m.get('f')!.data)).toEqual([3, 4]);
    writeFileSync(path, 'x');
    expect(() => readSafetensors(path, { lazy: true })).toThrow(/shorter than the 8-byte header length/);
  });
});

describe('safetensors errors name the file and tensor', () => {
  it('a missing file', () => {
    const path = join(tempDir(), 'nope.safetensors');
    expectError(path, `${path}: cannot open the safetensors file`);
  });

  it('a file shorter than the length prefix', () => {
    const path = join(tempDir(), 'short.safetensors');
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expectError(path, `${path}: not a safetensors file (3 bytes, shorter than the 8-byte header length)`);
  });

  it('a header length beyond the end of the file', () => {
    const path = join(tempDir(), 'long.safetensors');
    const buf = rawSafetensors({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    buf.writeBigUInt64LE(1000n, 0);
    writeFileSync(path, buf);
    expectError(path, `${path}: corrupt or truncated safetensors header (header length 1000, file size ${buf.length})`);
  });

  it('a header that is not JSON', () => {
    const path = join(tempDir(), 'badjson.safetensors');
    writeFileSync(path, rawSafetensors(null, new Uint8Array(4), '{"x": {"dtype": "F32", '));
    expectError(path, `${path}: corrupt safetensors header (not valid JSON)`);
  });

  it('a header that is JSON but not an object', () => {
    const path = join(tempDir(), 'array.safetensors');
    writeFileSync(path, rawSafetensors([1, 2]));
    expectError(path, `${path}: corrupt safetensors header (expected a JSON object)`);
  });

  it('a tensor entry without shape or offsets', () => {
    const path = join(tempDir(), 'entry.safetensors');
    writeFileSync(path, rawSafetensors({ w: { dtype: 'F32' } }));
    expectError(path, `${path}: tensor 'w': corrupt header entry (expected dtype, shape, data_offsets)`);
  });

  it('an unknown dtype', () => {
    const path = join(tempDir(), 'i64.safetensors');
    writeFileSync(path, rawSafetensors({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)));
    expectError(path, `${path}: tensor 'ids' has unsupported dtype 'I64' (expected F32, F16 or BF16)`);
  });

  it('a file truncated inside the tensor data', () => {
    const dir = tempDir();
    const path = join(dir, 'trunc.safetensors');
    writeSafetensors(path, new Map([['w', { shape: [4, 4], data: new Float32Array(16).fill(1) }]]));
    const full = readFileSync(path);
    writeFileSync(path, full.subarray(0, full.length - 10));
    expectError(path, `${path}: tensor 'w' has data offsets [0, 64] outside the 54 data bytes (truncated file?)`);
  });

  it('a file truncated inside the header', () => {
    const path = join(tempDir(), 'trunchead.safetensors');
    const full = rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    writeFileSync(path, full.subarray(0, 20));
    const n = Number(full.readBigUInt64LE(0));
    expectError(path, `${path}: corrupt or truncated safetensors header (header length ${n}, file size 20)`);
  });

  it('a byte range that does not match the shape', () => {
    const path = join(tempDir(), 'size.safetensors');
    writeFileSync(path, rawSafetensors({ w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, new Uint8Array(8)));
    expectError(path, `${path}: tensor 'w' has 8 bytes but shape [2,3] of F16 needs 12`);
  });
});
