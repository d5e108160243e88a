/**
 * GGUF's block formats (../shared/design/GGUF.md §1, the block table), read into one shape that both
 * ways of running a weight use: per sub-block of `group` values, integer codes q, a scale d, an integer
 * zero point z and a float offset m, so that every weight is exactly
 *
 *     w = d · (q − z) + m
 *
 * with d and m exact in float32 (fp16 values, or an fp16 times a small integer). The importer either
 * hands these to ONNX Runtime's MatMulNBits as stored (codes, scales and zero points; the offsets m
 * through a second small product, see graph.ts), or dequantizes them to float32.
 *
 *   type   group  bits  z    m              stored as MatMulNBits
 *   Q4_0   32     4     8    0              exact
 *   Q4_1   32     4     0    m              exact (codes + offset product)
 *   Q5_0   32     8     16   0              exact (5-bit codes in 8-bit slots)
 *   Q5_1   32     8     0    m              exact (codes + offset product)
 *   Q8_0   32     8     128  0              exact (q + 128)
 *   Q4_K   32     4     0    −dmin·mn       exact (sub-block scale d·sc, codes + offset product)
 *   Q5_K   32     8     0    −dmin·mn       exact (as Q4_K, 5-bit codes in 8-bit slots)
 *   Q6_K   16     8     32   0              exact (sub-block scale d·sc)
 *   F32, F16, BF16                          float32 (F16 and BF16 widen exactly)
 */
import { NuggetsError } from '../../io/errors';
import { ggmlTypeName, type GgufFile, type GgufTensor } from './file';

export const F32 = 0;
export const F16 = 1;
export const Q4_0 = 2;
export const Q4_1 = 3;
export const Q5_0 = 6;
export const Q5_1 = 7;
export const Q8_0 = 8;
export const Q4_K = 12;
export const Q5_K = 13;
export const Q6_K = 14;
export const BF16 = 30;

/** The tensor types the importer reads. */
export const SUPPORTED_TYPES: readonly number[] = [F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K];

/** A quantized matrix of `rows` × `columns` (GGUF: ne = [columns, rows]; rows are output features), in sub-blocks along each row. */
export interface BlockCodes {
  rows: number;
  columns: number;
  /** Values per sub-block (each row holds columns / group of them). */
  group: number;
  /** 4 or 8: the bit width MatMulNBits stores the codes in. */
  bits: 4 | 8;
  /** One code per weight, row-major [rows, columns]. */
  codes: Uint8Array;
  /** Per sub-block, row-major [rows, columns / group]. */
  scales: Float32Array;
  zeroPoints: Uint8Array;
  /** Per sub-block float offsets; undefined when every one is zero. */
  offsets: Float32Array | undefined;
}

const HALF = ((): Float32Array => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    table[h] = exponent === 0 ? sign * mantissa * 2 ** -24
      : exponent === 31 ? (mantissa ? NaN : sign * Infinity)
        : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();

function half(bytes: Uint8Array, at: number): number {
  return HALF[bytes[at]! | (bytes[at + 1]! << 8)]!;
}

/** The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (ggml's get_scale_min_k4). */
function scaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  if (j < 4) return [q[at + j]! & 63, q[at + j + 4]! & 63];
  return [(q[at + j + 4]! & 0xf) | ((q[at + j - 4]! >> 6) << 4), (q[at + j + 4]! >> 4) | ((q[at + j]! >> 6) << 4)];
}

export function isBlockType(type: number): boolean {
  return [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K].includes(type);
}

/** Refuses a tensor of a type the importer does not read, naming the tensor, its type and the file. */
export function assertSupportedType(file: GgufFile, tensor: GgufTensor): void {
  if (SUPPORTED_TYPES.includes(tensor.type)) return;
  throw new NuggetsError(
    `${file.path}: tensor ${tensor.name} is of type ${ggmlTypeName(tensor.type)}, which this importer does not read.`,
    `Supported tensor types: ${SUPPORTED_TYPES.map(ggmlTypeName).join(', ')}. Choose another quantization of the model (Q4_K_M, Q5_K_M, Q8_0 or F16).`,
  );
}

/** A 2-D block-quantized tensor's codes, scales, zero points and offsets, exactly as stored. */
export function blockCodes(tensor: GgufTensor, bytes: Uint8Array): BlockCodes {
  const columns = tensor.dims[0]!;
  const rows = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
  const count = rows * columns;
  const t = tensor.type;
  const group = t === Q6_K ? 16 : 32;
  const bits: 4 | 8 = t === Q4_0 || t === Q4_1 || t === Q4_K ? 4 : 8;
  const codes = new Uint8Array(count);
  const groups = count / group;
  const scales = new Float32Array(groups);
  const zeroPoints = new Uint8Array(groups);
  const offsets = t === Q4_1 || t === Q5_1 || t === Q4_K || t === Q5_K ? new Float32Array(groups) : undefined;
  switch (t) {
    case Q4_0:
    case Q4_1:
    case Q5_0:
    case Q5_1:
    case Q8_0: {
      const blockBytes = { [Q4_0]: 18, [Q4_1]: 20, [Q5_0]: 22, [Q5_1]: 24, [Q8_0]: 34 }[t]!;
      for (let b = 0; b < groups; b++) {
        const at = b * blockBytes;
        const out = b * 32;
        scales[b] = half(bytes, at);
        if (t === Q8_0) {
          zeroPoints[b] = 128;
          for (let j = 0; j < 32; j++) codes[out + j] = (bytes[at + 2 + j]! + 128) & 0xff; // int8 q + 128
          continue;
        }
        const hasMin = t === Q4_1 || t === Q5_1;
        if (hasMin) offsets![b] = half(bytes, at + 2);
        const fiveBit = t === Q5_0 || t === Q5_1;
        const qhAt = at + (hasMin ? 4 : 2);
        const qh = fiveBit ? (bytes[qhAt]! | (bytes[qhAt + 1]! << 8) | (bytes[qhAt + 2]! << 16) | (bytes[qhAt + 3]! << 24)) >>> 0 : 0;
        const qsAt = qhAt + (fiveBit ? 4 : 0);
        for (let j = 0; j < 16; j++) {
          const byte = bytes[qsAt + j]!;
          let low = byte & 0xf;
          let high = byte >> 4;
          if (fiveBit) {
            low |= ((qh >>> j) << 4) & 0x10;
            high |= (qh >>> (j + 12)) & 0x10;
          }
          codes[out + j] = low;
          codes[out + j + 16] = high;
        }
        zeroPoints[b] = t === Q4_0 ? 8 : t === Q5_0 ? 16 : 0;
      }
      break;
    }
    case Q4_K:
    case Q5_K: {
      const blockBytes = t === Q4_K ? 144 : 176;
      for (let b = 0; b < count / 256; b++) {
        const at = b * blockBytes;
        const d = half(bytes, at);
        const dmin = half(bytes, at + 2);
        const scalesAt = at + 4;
        const qhAt = at + 16; // Q5_K only
        const qsAt = at + (t === Q4_K ? 16 : 48);
        for (let c = 0; c < 4; c++) {
          for (const part of [0, 1]) {
            const sub = 2 * c + part;
            const [sc, mn] = scaleMinK4(sub, bytes, scalesAt);
            const g = b * 8 + sub;
            scales[g] = d * sc;
            offsets![g] = -(dmin * mn);
            const out = b * 256 + sub * 32;
            for (let l = 0; l < 32; l++) {
              const byte = bytes[qsAt + 32 * c + l]!;
              let q = part === 0 ? byte & 0xf : byte >> 4;
              if (t === Q5_K && bytes[qhAt + l]! & ((part === 0 ? 1 : 2) << (2 * c))) q += 16;
              codes[out + l] = q;
            }
          }
        }
      }
      break;
    }
    case Q6_K: {
      for (let b = 0; b < count / 256; b++) {
        const at = b * 210;
        const d = half(bytes, at + 208);
        for (let s = 0; s < 16; s++) {
          const sc = (bytes[at + 192 + s]! << 24) >> 24; // int8
          scales[b * 16 + s] = d * sc;
          zeroPoints[b * 16 + s] = 32;
        }
        for (let n = 0; n < 2; n++) {
          const ql = at + 64 * n;
          const qh = at + 128 + 32 * n;
          const out = b * 256 + 128 * n;
          for (let l = 0; l < 32; l++) {
            const h = bytes[qh + l]!;
            codes[out + l] = (bytes[ql + l]! & 0xf) | ((h & 3) << 4);
            codes[out + l + 32] = (bytes[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4);
            codes[out + l + 64] = (bytes[ql + l]! >> 4) | (((h >> 4) & 3) << 4);
            codes[out + l + 96] = (bytes[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4);
          }
        }
      }
      break;
    }
    default:
      throw new Error(`internal: ${ggmlTypeName(t)} is not a block type`);
  }
  return { rows, columns, group, bits, codes, scales, zeroPoints, offsets };
}

/** Every weight of a block-quantized matrix as float32, row-major [rows, columns]: d·(q − z) + m. */
export function dequantizeCodes(block: BlockCodes): Float32Array {
  const out = new Float32Array(block.codes.length);
  const { group, codes, scales, zeroPoints, offsets } = block;
  for (let g = 0; g < scales.length; g++) {
    const d = scales[g]!;
    const z = zeroPoints[g]!;
    const m = offsets ? offsets[g]! : 0;
    for (let j = g * group, end = j + group; j < end; j++) out[j] = d * (codes[j]! - z) + m;
  }
  return out;
}

/** Any supported tensor as float32, in GGUF order (row-major [rows, columns]). */
export function dequantize(tensor: GgufTensor, bytes: Uint8Array): Float32Array {
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  switch (tensor.type) {
    case F32: return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 4));
    case F16: {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = half(bytes, 2 * i);
      return out;
    }
    case BF16: {
      const widened = new Uint32Array(count);
      for (let i = 0; i < count; i++) widened[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16;
      return new Float32Array(widened.buffer);
    }
    default: return dequantizeCodes(blockCodes(tensor, bytes));
  }
}

/** MatMulNBits inputs for a block-coded matrix (ONNX Runtime ContribOperators.md): B, scales and zero points. */
export interface NBitsWeights {
  bits: 4 | 8;
  blockSize: number;
  /** uint8 [N, kBlocks, blockSize·bits/8]: for 4 bits, value 2j in the low nibble of byte j, 2j+1 in the high. */
  b: Uint8Array;
  /** float [N, kBlocks]. */
  scales: Float32Array;
  /** uint8, packed as B for 4 bits ([N, ceil(kBlocks/2)], even blocks in the low nibble), one per block for 8 bits. */
  zeroPoints: Uint8Array;
  /** float [kBlocks, N]: the offsets transposed, multiplied by each block's sum of inputs (graph.ts); undefined when all are zero. */
  offsetsByColumn: Float32Array | undefined;
}

export function nbitsWeights(block: BlockCodes): NBitsWeights {
  const { rows, columns, group, bits, codes } = block;
  const kBlocks = columns / group;
  let b: Uint8Array;
  let zeroPoints: Uint8Array;
  if (bits === 8) {
    b = codes;
    zeroPoints = block.zeroPoints;
  } else {
    b = new Uint8Array(codes.length / 2);
    for (let i = 0; i < b.length; i++) b[i] = codes[2 * i]! | (codes[2 * i + 1]! << 4);
    const perRow = Math.ceil(kBlocks / 2);
    zeroPoints = new Uint8Array(rows * perRow);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < kBlocks; k++) zeroPoints[r * perRow + (k >> 1)]! |= block.zeroPoints[r * kBlocks + k]! << ((k & 1) * 4);
    }
  }
  let offsetsByColumn: Float32Array | undefined;
  if (block.offsets && block.offsets.some((m) => m !== 0)) {
    offsetsByColumn = new Float32Array(kBlocks * rows);
    for (let r = 0; r < rows; r++) for (let k = 0; k < kBlocks; k++) offsetsByColumn[k * rows + r] = block.offsets[r * kBlocks + k]!;
  }
  return { bits, blockSize: group, b, scales: block.scales, zeroPoints, offsetsByColumn };
}
