import { CircuitryError } from '../errors.js';

/**
 * The safetensors format on bytes, free of node:fs so the browser (the live report) parses
 * weights with the same code as the CLI: parsing from any byte source (a file read piecewise,
 * an in-memory buffer) and serializing float32 tensors.
 */

/** A tensor read from a safetensors file, converted to float32. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function decode(dtype: string, bytes: Uint8Array, inPlace = false): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  // float32 data at an aligned offset is read in place (a little-endian host, as Node's are)
  if (inPlace && dtype === 'F32' && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === 'F16') {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  } else {
    const u32 = new Uint32Array(n);
    for (let i = 0; i < n; i++) u32[i] = view.getUint16(2 * i, true) << 16;
    out.set(new Float32Array(u32.buffer));
  }
  return out;
}

/** Random access to the bytes of a safetensors file: `read(offset, length)` returns exactly that range. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

/**
 * Reads every tensor of a safetensors byte source. The header is validated against the size:
 * a truncated file, a corrupt header, overlapping or out-of-range offsets and unknown dtypes
 * each give an error naming `source` (and the tensor). With `lazy`, a tensor's data is read from
 * the source each time it is accessed, so that copying the weights once (into a buffer shared
 * with pool workers) never holds a second full copy.
 */
export function parseSafetensorsFrom(src: ByteSource, source: string, opts: { views?: boolean; lazy?: boolean } = {}): Map<string, HostTensor> {
  const size = src.size;
  if (size < 8) throw new CircuitryError(`${source}: not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
  const lenBytes = src.read(0, 8);
  const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen <= 0 || 8 + headerLen > size) {
    throw new CircuitryError(`${source}: corrupt or truncated safetensors header (header length ${headerLen}, file size ${size})`);
  }
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(src.read(8, headerLen)));
  } catch {
    throw new CircuitryError(`${source}: corrupt safetensors header (not valid JSON)`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CircuitryError(`${source}: corrupt safetensors header (expected a JSON object)`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const out = new Map<string, HostTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!info || typeof info !== 'object' || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets)) {
      throw new CircuitryError(`${source}: tensor '${name}': corrupt header entry (expected dtype, shape, data_offsets)`);
    }
    if (!info.shape.every((s) => Number.isInteger(s) && s >= 0)) {
      throw new CircuitryError(`${source}: tensor '${name}' has shape [${info.shape}]: dimensions must be non-negative integers`);
    }
    if (!(info.dtype in DTYPE_BYTES)) {
      throw new CircuitryError(`${source}: tensor '${name}' has unsupported dtype '${info.dtype}' (expected F32, F16 or BF16)`);
    }
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > dataLen) {
      throw new CircuitryError(`${source}: tensor '${name}' has data offsets [${begin}, ${end}] outside the ${dataLen} data bytes (truncated file?)`);
    }
    if (end - begin !== count * DTYPE_BYTES[info.dtype]) {
      throw new CircuitryError(`${source}: tensor '${name}' has ${end - begin} bytes but shape [${info.shape}] of ${info.dtype} needs ${count * DTYPE_BYTES[info.dtype]}`);
    }
    ranges.push([begin, end, name]);
    const read = () => decode(info.dtype, src.read(dataStart + begin, end - begin), opts.views);
    // lazy: the data is read on each access and never held here (weights copied once elsewhere)
    out.set(name, opts.lazy ? { shape: info.shape, get data() { return read(); } } : { shape: info.shape, data: read() });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) {
      throw new CircuitryError(`${source}: tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap in the data section (corrupt header)`);
    }
  }
  return out;
}

/**
 * Every tensor of a safetensors file held in memory. With `views`, float32 tensors are views of
 * `bytes` through their offsets (no copy: pool workers read the weights of one shared buffer).
 */
export function parseSafetensors(bytes: Uint8Array, source: string, opts: { views?: boolean } = {}): Map<string, HostTensor> {
  return parseSafetensorsFrom({ size: bytes.byteLength, read: (offset, length) => bytes.subarray(offset, offset + length) }, source, opts);
}

/** Whether this host stores floats little-endian, as safetensors does (then tensors copy in bulk). */
const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/**
 * Float32 tensors as the bytes of a safetensors file (names sorted, header padded to 8 bytes).
 * `alloc` provides the output buffer (e.g. a view of a SharedArrayBuffer, so that the weights
 * shared with pool workers are written once, without a second full-size copy).
 */
export function safetensorsBytes(tensors: ReadonlyMap<string, HostTensor>, metadata?: Record<string, string>, alloc: (size: number) => Uint8Array = (n) => new Uint8Array(n)): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const shape = tensors.get(name)!.shape;
    const bytes = 4 * shape.reduce((a, b) => a * b, 1); // from the shape: the data may be read lazily
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerStr = JSON.stringify(header);
  headerStr += ' '.repeat((8 - (new TextEncoder().encode(headerStr).length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerStr);
  const buf = alloc(8 + headerBytes.length + offset);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  buf.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    const data = t.data; // once: a lazy tensor reads its data on each access
    if (data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`safetensorsBytes: tensor '${name}' has ${data.length} values for shape [${t.shape}]`);
    // pos is a multiple of 4 (8-byte header length, 4-byte floats); a Float32Array view needs the absolute offset aligned too
    if (LITTLE_ENDIAN && (buf.byteOffset + pos) % 4 === 0) new Float32Array(buf.buffer, buf.byteOffset + pos, data.length).set(data);
    else for (let i = 0; i < data.length; i++) view.setFloat32(pos + 4 * i, data[i], true);
    pos += data.length * 4;
  }
  return buf;
}
