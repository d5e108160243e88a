/**
 * The ONNX graph of a GGUF model (`llama` and `qwen2` architectures), written from the file's tensors:
 * a decoder with Optimum's names (input_ids, attention_mask, position_ids, past_key_values.{i}.key/value
 * in; logits, present.{i}.key/value out), so that the engine runs it like any exported model, and the
 * log-probability head is added at load time as for every other graph (logprob-head.ts).
 *
 * Weights are reproduced exactly as the file holds them. With `weights: 'stored'`, every block-quantized
 * matrix becomes ONNX Runtime's MatMulNBits over the file's own codes, scales and integer zero points
 * (quants.ts); the float offsets of the affine types (Q4_1, Q5_1, Q4_K, Q5_K: w = d·(q − z) + m) are
 * added by a second, small product: each block's sum of inputs times its offset, which is exact
 * arithmetic and keeps MatMulNBits on its fast, prepacked path (a float zero point would not). With
 * `weights: 'float32'`, every matrix is dequantized to float32 and multiplied by MatMul. Norms and
 * biases are float32 in both, and the embedding table is dequantized for Gather.
 *
 * llama.cpp stores Llama's Q and K rows permuted for its rotary layout (GGUF.md §2); the rows are put
 * back in Hugging Face's order (a pure row permutation, blocks and scales move with their rows), and
 * both architectures then use the rotate-half rotary embedding. Qwen2 is stored unpermuted.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NuggetsError } from '../../io/errors';
import { readTensorBytes, type GgufFile, type GgufTensor } from './file';
import type { ModelShape } from './shape';
import { blockCodes, dequantize, isBlockType, nbitsWeights, type BlockCodes } from './quants';
import { DataType, OnnxWriter } from './onnx-writer';

export type WeightStorage = 'stored' | 'float32';

export const GRAPH_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx_data';

const MS = 'com.microsoft';

/** Writes model.onnx and model.onnx_data into `folder`. `onProgress` is told the GGUF bytes read so far, of all it will read. */
export function writeGraph(file: GgufFile, shape: ModelShape, folder: string, weights: WeightStorage, onProgress?: (done: number, total: number) => void, accuracyLevel = 0): void {
  const w = new OnnxWriter(join(folder, DATA_FILE), DATA_FILE);
  const tied = !file.tensors.has('output.weight');
  const total = [...file.tensors.values()].reduce((n, t) => n + t.byteLength, 0) + (tied ? file.tensors.get('token_embd.weight')?.byteLength ?? 0 : 0);
  let done = 0;
  const tensor = (name: string): GgufTensor => {
    const t = file.tensors.get(name);
    if (!t) throw new NuggetsError(`${file.path} has no tensor ${name}, which a ${shape.architecture} model needs.`, 'The file may be damaged or of another architecture; fetch it again.');
    done += t.byteLength;
    onProgress?.(done, total);
    return t;
  };
  const floatOf = (t: GgufTensor, expected: number[]): Float32Array => {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== expected.reduce((a, b) => a * b, 1)) {
      throw new NuggetsError(`${file.path}: tensor ${t.name} has shape [${t.dims.join(', ')}], but the model's metadata implies [${[...expected].reverse().join(', ')}].`, 'The file may be damaged; fetch it again.');
    }
    return dequantize(t, readTensorBytes(file, t));
  };
  const { hidden, heads, kvHeads, headDim, ffn, vocab, layers, eps } = shape;

  // Inputs and outputs, as Optimum names them.
  const inputIds = w.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const attentionMask = w.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const positionIds = w.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  for (let i = 0; i < layers; i++) {
    for (const kv of ['key', 'value']) {
      w.input(`past_key_values.${i}.${kv}`, DataType.FLOAT, ['batch_size', kvHeads, 'past_sequence_length', headDim]);
    }
  }
  w.output('logits', DataType.FLOAT, ['batch_size', 'sequence_length', vocab]);
  for (let i = 0; i < layers; i++) {
    for (const kv of ['key', 'value']) w.output(`present.${i}.${kv}`, DataType.FLOAT, ['batch_size', kvHeads, 'total_sequence_length', headDim]);
  }

  // The additive attention mask [batch, 1, sequence, total]: causal, and padding masked out.
  const axis0 = w.ints([0]);
  const zero = w.constant(DataType.INT64, [], BigInt64Array.of(0n));
  const one = w.constant(DataType.INT64, [], BigInt64Array.of(1n));
  const sequence = w.node('Squeeze', [w.node('Shape', [inputIds], { start: 1, end: 2 }), axis0]);
  const totalLength = w.node('Squeeze', [w.node('Shape', [attentionMask], { start: 1, end: 2 }), axis0]);
  const past = w.node('Sub', [totalLength, sequence]);
  const keyPositions = w.node('Unsqueeze', [w.node('Range', [zero, totalLength, one]), axis0]);
  const queryPositions = w.node('Unsqueeze', [w.node('Add', [w.node('Range', [zero, sequence, one]), past]), w.ints([1])]);
  const causal = w.node('LessOrEqual', [keyPositions, queryPositions]);
  const padding = w.node('Unsqueeze', [w.node('Cast', [attentionMask], { to: DataType.BOOL }), w.ints([1, 2])]);
  const allowed = w.node('And', [causal, padding]);
  const mask = w.node('Where', [allowed, w.scalar(0), w.scalar(-1e30)]);

  // Rotary tables [context, headDim/2] for RotaryEmbedding (rotate-half).
  const { cos, sin } = rotaryTables(shape, file);
  const cosCache = w.weight('rotary_cos', DataType.FLOAT, [shape.contextLength, headDim / 2], cos);
  const sinCache = w.weight('rotary_sin', DataType.FLOAT, [shape.contextLength, headDim / 2], sin);

  const linear = (x: string, name: string, rows: number, columns: number, permuteHeads?: number, output?: string): string => {
    const named = { ...(output ? { outputs: [output] } : {}) };
    const t = tensor(name);
    if (t.dims[0] !== columns || t.dims.slice(1).reduce((a, b) => a * b, 1) !== rows) {
      throw new NuggetsError(`${file.path}: tensor ${name} has shape [${t.dims.join(', ')}], but the model's metadata implies [${columns}, ${rows}].`, 'The file may be damaged; fetch it again.');
    }
    if (weights === 'stored' && isBlockType(t.type)) {
      const codes = blockCodes(t, readTensorBytes(file, t));
      const q = nbitsWeights(permuteHeads ? permuteBlockRows(codes, permuteHeads) : codes);
      const kBlocks = columns / q.blockSize;
      const product = w.node('MatMulNBits', [
        x,
        w.weight(`${name}.codes`, DataType.UINT8, [rows, kBlocks, (q.blockSize * q.bits) / 8], q.b),
        w.weight(`${name}.scales`, DataType.FLOAT, [rows * kBlocks], q.scales),
        w.weight(`${name}.zero_points`, DataType.UINT8, [q.zeroPoints.length], q.zeroPoints),
      ], { K: columns, N: rows, bits: q.bits, block_size: q.blockSize, ...(accuracyLevel ? { accuracy_level: accuracyLevel } : {}) }, { domain: MS, ...(q.offsetsByColumn ? {} : named) });
      if (!q.offsetsByColumn) return product;
      // Σ_k x_k·m_block(k) = Σ_blocks (Σ_{k in block} x_k)·m_block: block sums [.., kBlocks] times offsets [kBlocks, rows].
      const blockSums = w.node('ReduceSum', [w.node('Reshape', [x, w.ints([0, 0, kBlocks, q.blockSize])]), w.ints([-1])], { keepdims: 0 });
      return w.node('Add', [product, w.node('MatMul', [blockSums, w.weight(`${name}.offsets`, DataType.FLOAT, [kBlocks, rows], q.offsetsByColumn)])], {}, named);
    }
    let values = dequantize(t, readTensorBytes(file, t));
    if (permuteHeads) values = permuteFloatRows(values, rows, columns, permuteHeads);
    return w.node('MatMul', [x, w.weight(`${name}.transposed`, DataType.FLOAT, [columns, rows], transpose(values, rows, columns))], {}, named);
  };
  const bias = (x: string, name: string, size: number): string => {
    const t = file.tensors.get(name);
    return t ? w.node('Add', [x, w.weight(name, DataType.FLOAT, [size], floatOf(tensor(name), [size]))]) : x;
  };
  const norm = (x: string, name: string): string =>
    w.node('SimplifiedLayerNormalization', [x, w.weight(name, DataType.FLOAT, [hidden], floatOf(tensor(name), [hidden]))], { axis: -1, epsilon: { float: eps }, stash_type: 1 });

  const embedding = tensor('token_embd.weight');
  const embeddingTable = floatOf(embedding, [vocab, hidden]);
  let x = w.node('Gather', [w.weight('token_embd.weight', DataType.FLOAT, [vocab, hidden], embeddingTable), inputIds], { axis: 0 });

  const llama = shape.architecture === 'llama';
  const scale = w.scalar(1 / Math.sqrt(headDim));
  for (let i = 0; i < layers; i++) {
    const p = `blk.${i}.`;
    const h = norm(x, `${p}attn_norm.weight`);
    const q = bias(linear(h, `${p}attn_q.weight`, heads * headDim, hidden, llama ? heads : undefined), `${p}attn_q.bias`, heads * headDim);
    const k = bias(linear(h, `${p}attn_k.weight`, kvHeads * headDim, hidden, llama ? kvHeads : undefined), `${p}attn_k.bias`, kvHeads * headDim);
    const v = bias(linear(h, `${p}attn_v.weight`, kvHeads * headDim, hidden), `${p}attn_v.bias`, kvHeads * headDim);
    const rotate = (t: string, count: number): string =>
      w.node('RotaryEmbedding', [t, positionIds, cosCache, sinCache], { interleaved: 0, num_heads: count }, { domain: MS });
    const heads4 = (t: string, count: number): string => w.node('Transpose', [w.node('Reshape', [t, w.ints([0, 0, count, headDim])])], { perm: [0, 2, 1, 3] });
    const keys = w.node('Concat', [`past_key_values.${i}.key`, heads4(rotate(k, kvHeads), kvHeads)], { axis: 2 }, { outputs: [`present.${i}.key`] });
    const values = w.node('Concat', [`past_key_values.${i}.value`, heads4(v, kvHeads)], { axis: 2 }, { outputs: [`present.${i}.value`] });
    // Grouped-query attention without copying keys: query heads h = kv·g + j are laid out as [batch, kv, g·sequence, headDim].
    const queries = w.node('Reshape', [w.node('Mul', [heads4(rotate(q, heads), heads), scale]), w.ints([0, kvHeads, -1, headDim])]);
    const scores = w.node('Reshape', [w.node('MatMul', [queries, w.node('Transpose', [keys], { perm: [0, 1, 3, 2] })]), w.ints([0, heads, -1, 0])]);
    const weightsOfKeys = w.node('Reshape', [w.node('Softmax', [w.node('Add', [scores, mask])], { axis: -1 }), w.ints([0, kvHeads, -1, 0])]);
    const attended = w.node('Reshape', [w.node('MatMul', [weightsOfKeys, values]), w.ints([0, heads, -1, headDim])]);
    const merged = w.node('Reshape', [w.node('Transpose', [attended], { perm: [0, 2, 1, 3] }), w.ints([0, 0, heads * headDim])]);
    x = w.node('Add', [x, linear(merged, `${p}attn_output.weight`, hidden, heads * headDim)]);
    const m = norm(x, `${p}ffn_norm.weight`);
    const gate = linear(m, `${p}ffn_gate.weight`, ffn, hidden);
    const up = linear(m, `${p}ffn_up.weight`, ffn, hidden);
    const activated = w.node('Mul', [w.node('Mul', [gate, w.node('Sigmoid', [gate])]), up]);
    x = w.node('Add', [x, linear(activated, `${p}ffn_down.weight`, hidden, ffn)]);
  }
  const final = norm(x, 'output_norm.weight');
  linear(final, tied ? 'token_embd.weight' : 'output.weight', vocab, hidden, undefined, 'logits');
  writeFileSync(join(folder, GRAPH_FILE), w.finish({ '': 17, [MS]: 1 }, { source: 'gguf', weights }));
}

/** cos and sin of position·θ_i for every position the model takes, θ_i = base^(−2i/d) (divided by rope_freqs when the file has them: Llama 3.1). */
function rotaryTables(shape: ModelShape, file: GgufFile): { cos: Float32Array; sin: Float32Array } {
  const half = shape.headDim / 2;
  const factors = file.tensors.get('rope_freqs.weight');
  const divide = factors ? dequantize(factors, readTensorBytes(file, factors)) : undefined;
  const cos = new Float32Array(shape.contextLength * half);
  const sin = new Float32Array(shape.contextLength * half);
  const frequencies = Float64Array.from({ length: half }, (_, i) => shape.ropeBase ** ((-2 * i) / shape.headDim) / (divide ? divide[i]! : 1));
  for (let p = 0; p < shape.contextLength; p++) {
    const position = p / shape.ropeLinearFactor;
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(position * frequencies[i]!);
      sin[p * half + i] = Math.sin(position * frequencies[i]!);
    }
  }
  return { cos, sin };
}

/** Where each Hugging Face row comes from in llama.cpp's order: HF[h·d + j·d/2 + i] = GGUF[h·d + 2i + j]. */
function unpermutedRowSource(rows: number, heads: number): Int32Array {
  const d = rows / heads;
  const source = new Int32Array(rows);
  for (let h = 0; h < heads; h++) for (let j = 0; j < 2; j++) for (let i = 0; i < d / 2; i++) source[h * d + j * (d / 2) + i] = h * d + 2 * i + j;
  return source;
}

function permuteBlockRows(block: BlockCodes, heads: number): BlockCodes {
  const source = unpermutedRowSource(block.rows, heads);
  const perRow = block.columns / block.group;
  const move = <T extends Uint8Array | Float32Array>(from: T, width: number): T => {
    const out = new (from.constructor as new (n: number) => T)(from.length);
    for (let r = 0; r < block.rows; r++) out.set(from.subarray(source[r]! * width, (source[r]! + 1) * width), r * width);
    return out;
  };
  return {
    ...block,
    codes: move(block.codes, block.columns),
    scales: move(block.scales, perRow),
    zeroPoints: move(block.zeroPoints, perRow),
    offsets: block.offsets && move(block.offsets, perRow),
  };
}

function permuteFloatRows(values: Float32Array, rows: number, columns: number, heads: number): Float32Array {
  const source = unpermutedRowSource(rows, heads);
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) out.set(values.subarray(source[r]! * columns, (source[r]! + 1) * columns), r * columns);
  return out;
}

function transpose(values: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) out[c * rows + r] = values[r * columns + c]!;
  return out;
}
