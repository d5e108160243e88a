/**
 * The embedding signal (RDS+, Ivison et al. 2025): the mean over the candidate's tokens of the final
 * hidden state (the input of the language-model head), L2-normalised, from the prefix pass. A vector,
 * so it is stored in a binary sidecar (embedding-file.ts) and used for diversity and neighbours.
 */

/** Mean of rows [from, to) of a [rows, size] matrix, L2-normalised; undefined for an empty range. */
export function meanPooledUnit(hidden: Float32Array, size: number, from: number, to: number): Float32Array | undefined {
  if (to <= from) return undefined;
  const sum = new Float64Array(size);
  for (let t = from; t < to; t++) {
    const row = t * size;
    for (let d = 0; d < size; d++) sum[d]! += hidden[row + d]!;
  }
  let norm = 0;
  for (let d = 0; d < size; d++) norm += sum[d]! * sum[d]!;
  norm = Math.sqrt(norm);
  if (norm === 0) return undefined;
  return Float32Array.from(sum, (v) => v / norm);
}

/** a · b[offset .. offset + a.length). */
export function dot(a: Float32Array, b: Float32Array, offset = 0): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[i]! * b[offset + i]!;
    s1 += a[i + 1]! * b[offset + i + 1]!;
    s2 += a[i + 2]! * b[offset + i + 2]!;
    s3 += a[i + 3]! * b[offset + i + 3]!;
  }
  for (; i < n; i++) s0 += a[i]! * b[offset + i]!;
  return s0 + s1 + s2 + s3;
}

// IEEE 754 half precision, round to nearest even: the sidecar's storage type (half the bytes of float32).
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

export function toHalf(value: number): number {
  scratch[0] = value;
  const x = scratchBits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (rest > midpoint || (rest === midpoint && (half & 1)) ? half + 1 : half);
  }
  const half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? half + 1 : half);
}

export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
