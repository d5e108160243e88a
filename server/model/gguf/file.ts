/**
 * Reads a GGUF file (the format of llama.cpp, Ollama and LM Studio; ../shared/design/GGUF.md §1): its
 * metadata and tensor table, and then each tensor's bytes on demand. The header is read in chunks, so
 * a multi-gigabyte file costs only its header here; tensor data is read one tensor at a time by the
 * importer. Every way a file can be broken (empty, another format, cut short, a table pointing past
 * the end) is a NuggetsError that names the file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { NuggetsError, fileError } from '../../io/errors';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types: id, name, elements per block and bytes per block (GGUF.md §1, "ggml_type ids" and the block table). */
export interface GgmlType {
  id: number;
  name: string;
  blockSize: number;
  blockBytes: number;
}

const TYPES: GgmlType[] = [
  { id: 0, name: 'F32', blockSize: 1, blockBytes: 4 },
  { id: 1, name: 'F16', blockSize: 1, blockBytes: 2 },
  { id: 2, name: 'Q4_0', blockSize: 32, blockBytes: 18 },
  { id: 3, name: 'Q4_1', blockSize: 32, blockBytes: 20 },
  { id: 6, name: 'Q5_0', blockSize: 32, blockBytes: 22 },
  { id: 7, name: 'Q5_1', blockSize: 32, blockBytes: 24 },
  { id: 8, name: 'Q8_0', blockSize: 32, blockBytes: 34 },
  { id: 9, name: 'Q8_1', blockSize: 32, blockBytes: 36 },
  { id: 10, name: 'Q2_K', blockSize: 256, blockBytes: 84 },
  { id: 11, name: 'Q3_K', blockSize: 256, blockBytes: 110 },
  { id: 12, name: 'Q4_K', blockSize: 256, blockBytes: 144 },
  { id: 13, name: 'Q5_K', blockSize: 256, blockBytes: 176 },
  { id: 14, name: 'Q6_K', blockSize: 256, blockBytes: 210 },
  { id: 15, name: 'Q8_K', blockSize: 256, blockBytes: 292 },
  { id: 16, name: 'IQ2_XXS', blockSize: 256, blockBytes: 66 },
  { id: 17, name: 'IQ2_XS', blockSize: 256, blockBytes: 74 },
  { id: 18, name: 'IQ3_XXS', blockSize: 256, blockBytes: 98 },
  { id: 19, name: 'IQ1_S', blockSize: 256, blockBytes: 50 },
  { id: 20, name: 'IQ4_NL', blockSize: 32, blockBytes: 18 },
  { id: 21, name: 'IQ3_S', blockSize: 256, blockBytes: 110 },
  { id: 22, name: 'IQ2_S', blockSize: 256, blockBytes: 82 },
  { id: 23, name: 'IQ4_XS', blockSize: 256, blockBytes: 136 },
  { id: 24, name: 'I8', blockSize: 1, blockBytes: 1 },
  { id: 25, name: 'I16', blockSize: 1, blockBytes: 2 },
  { id: 26, name: 'I32', blockSize: 1, blockBytes: 4 },
  { id: 27, name: 'I64', blockSize: 1, blockBytes: 8 },
  { id: 28, name: 'F64', blockSize: 1, blockBytes: 8 },
  { id: 29, name: 'IQ1_M', blockSize: 256, blockBytes: 56 },
  { id: 30, name: 'BF16', blockSize: 1, blockBytes: 2 },
  { id: 34, name: 'TQ1_0', blockSize: 256, blockBytes: 54 },
  { id: 35, name: 'TQ2_0', blockSize: 256, blockBytes: 66 },
  { id: 39, name: 'MXFP4', blockSize: 32, blockBytes: 17 },
];
const TYPES_BY_ID = new Map(TYPES.map((t) => [t.id, t]));

export function ggmlType(id: number): GgmlType | undefined {
  return TYPES_BY_ID.get(id);
}

export function ggmlTypeName(id: number): string {
  return TYPES_BY_ID.get(id)?.name ?? `type ${id}`;
}

export interface GgufTensor {
  name: string;
  /** GGUF order: dims[0] is the innermost (contiguous) dimension, the reverse of a numpy shape. */
  dims: number[];
  type: number;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  size: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensor>;
  /** Where tensor data starts (aligned). */
  dataOffset: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const HEADER_CHUNK = 1 << 20;

/** Reads the header and tensor table of a GGUF file; throws a NuggetsError naming the file for anything broken. */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fileError(err, 'read GGUF file', path);
  }
  try {
    const size = fstatSync(fd).size;
    if (fstatSync(fd).isDirectory()) throw new NuggetsError(`Cannot read GGUF file ${path}: it is a folder, not a file.`);
    if (size === 0) throw new NuggetsError(`${path} is empty (0 bytes), not a GGUF file.`, 'The download or copy may have failed; fetch the file again.');
    const cursor = new Cursor(fd, size, path);
    const magic = cursor.u32();
    if (magic !== MAGIC) {
      const head = cursor.peekStart(4);
      throw new NuggetsError(
        `${path} is not a GGUF file: it starts with ${describeMagic(head)}, not "GGUF".`,
        head[0] === 0x08 || head[0] === 0x0a ? 'It looks like an ONNX graph: pass the folder that holds it as the model.' : 'Pass a .gguf file as written by llama.cpp, Ollama or LM Studio.',
      );
    }
    const version = cursor.u32();
    if (version !== 2 && version !== 3) {
      throw new NuggetsError(`${path} is GGUF version ${version}; this importer reads versions 2 and 3.`, version === 1 ? 'Convert it again with a current llama.cpp.' : undefined);
    }
    const tensorCount = cursor.count('tensor count');
    const kvCount = cursor.count('metadata count');
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = cursor.string();
      const type = cursor.u32();
      metadata.set(key, cursor.value(type, key));
    }
    const infos: Array<{ name: string; dims: number[]; type: number; relative: number }> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = cursor.string();
      const nDims = cursor.u32();
      if (nDims < 1 || nDims > 4) throw cursor.corrupt(`tensor ${name} has ${nDims} dimensions`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(cursor.count(`dimension of ${name}`));
      const type = cursor.u32();
      const relative = cursor.count(`offset of ${name}`);
      infos.push({ name, dims, type, relative });
    }
    const alignmentValue = metadata.get('general.alignment') ?? 32;
    const alignment = typeof alignmentValue === 'number' ? alignmentValue : Number(alignmentValue);
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw cursor.corrupt(`general.alignment ${alignment} is not a power of two`);
    const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
    const tensors = new Map<string, GgufTensor>();
    for (const info of infos) {
      const type = ggmlType(info.type);
      const elements = info.dims.reduce((a, b) => a * b, 1);
      // Unknown types have no known size; the importer refuses them by name when it needs them.
      const byteLength = type ? (elements / type.blockSize) * type.blockBytes : 0;
      if (type && info.dims[0]! % type.blockSize !== 0) throw cursor.corrupt(`tensor ${info.name} (${type.name}) has rows of ${info.dims[0]} values, not a multiple of its block size ${type.blockSize}`);
      const offset = dataOffset + info.relative;
      if (offset + byteLength > size) {
        throw new NuggetsError(
          `${path} is truncated: tensor ${info.name} needs bytes ${offset} to ${offset + byteLength}, but the file ends at byte ${size}.`,
          'The download or copy stopped early; fetch the file again.',
        );
      }
      tensors.set(info.name, { name: info.name, dims: info.dims, type: info.type, offset, byteLength });
    }
    return { path, version, size, metadata, tensors, dataOffset };
  } finally {
    closeSync(fd);
  }
}

/** A tensor's raw bytes, as stored. */
export function readTensorBytes(file: GgufFile, tensor: GgufTensor): Buffer {
  const fd = openSync(file.path, 'r');
  try {
    const out = Buffer.allocUnsafe(tensor.byteLength);
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, tensor.offset + done);
      if (n === 0) throw new NuggetsError(`${file.path} is truncated: tensor ${tensor.name} ends past the end of the file.`, 'Fetch the file again.');
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** A metadata value that must be there, of the given JavaScript type, named in the error when it is not. */
export function metadataNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v) && v.length > 0 && v.every((x) => x === v[0])) return metadataScalar(v[0]!);
  throw new NuggetsError(`${file.path}: metadata ${key} is ${Array.isArray(v) ? 'a list of differing values (one per layer)' : typeof v}, not a number.`, 'Models whose layers differ in shape are not supported.');
}

function metadataScalar(v: GgufValue): number | undefined {
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

export function metadataString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  return typeof v === 'string' ? v : undefined;
}

function describeMagic(bytes: Uint8Array): string {
  const printable = [...bytes].every((b) => b >= 0x20 && b < 0x7f);
  return printable ? `"${Buffer.from(bytes).toString('latin1')}"` : `the bytes ${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`;
}

/** Sequential little-endian reads over a file, a chunk at a time. */
class Cursor {
  position = 0;
  private chunk = Buffer.alloc(0);
  private chunkStart = 0;

  constructor(private readonly fd: number, private readonly size: number, private readonly path: string) {}

  truncated(what: string): NuggetsError {
    return new NuggetsError(`${this.path} is truncated: it ends (at byte ${this.size}) inside its header, while reading ${what}.`, 'The download or copy stopped early; fetch the file again.');
  }

  corrupt(what: string): NuggetsError {
    return new NuggetsError(`${this.path} is not a valid GGUF file: ${what} (header byte ${this.position}).`, 'The file may be damaged; fetch it again.');
  }

  peekStart(n: number): Uint8Array {
    const out = Buffer.alloc(Math.min(n, this.size));
    readSync(this.fd, out, 0, out.length, 0);
    return out;
  }

  private take(n: number, what: string): Buffer {
    if (this.position + n > this.size) throw this.truncated(what);
    const offset = this.position - this.chunkStart;
    if (offset < 0 || offset + n > this.chunk.length) {
      const length = Math.min(Math.max(n, HEADER_CHUNK), this.size - this.position);
      this.chunk = Buffer.allocUnsafe(length);
      readSync(this.fd, this.chunk, 0, length, this.position);
      this.chunkStart = this.position;
    }
    const at = this.position - this.chunkStart;
    this.position += n;
    return this.chunk.subarray(at, at + n);
  }

  u32(what = 'a number'): number {
    return this.take(4, what).readUInt32LE(0);
  }

  u64(what: string): bigint {
    return this.take(8, what).readBigUInt64LE(0);
  }

  /** A u64 count or length, which must fit in what is left of the file (a corrupt count would otherwise allocate without end). */
  count(what: string): number {
    const v = this.u64(what);
    if (v > BigInt(this.size) * 8n) throw this.corrupt(`${what} is ${v}, more than the file could hold`);
    return Number(v);
  }

  string(): string {
    const length = this.count('a string length');
    return this.take(length, 'a string').toString('utf8');
  }

  value(type: number, key: string): GgufValue {
    switch (type) {
      case 0: return this.take(1, key).readUInt8(0);
      case 1: return this.take(1, key).readInt8(0);
      case 2: return this.take(2, key).readUInt16LE(0);
      case 3: return this.take(2, key).readInt16LE(0);
      case 4: return this.take(4, key).readUInt32LE(0);
      case 5: return this.take(4, key).readInt32LE(0);
      case 6: return this.take(4, key).readFloatLE(0);
      case 7: return this.take(1, key).readUInt8(0) !== 0;
      case 8: return this.string();
      case 9: {
        const elementType = this.u32(key);
        const n = this.count(`the length of ${key}`);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(elementType, key);
        return out;
      }
      case 10: {
        const v = this.take(8, key).readBigUInt64LE(0);
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 11: {
        const v = this.take(8, key).readBigInt64LE(0);
        return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
      }
      case 12: return this.take(8, key).readDoubleLE(0);
      default: throw this.corrupt(`metadata ${key} has an unknown value type ${type}`);
    }
  }
}
