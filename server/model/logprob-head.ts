/**
 * Adds a log-probability head to a causal LM graph, in memory, before the session is created:
 *
 *   logits [B, S, V] -> LogSoftmax(axis 2) -> GatherElements(target_ids [B, S, 1], axis 2) -> target_logprobs [B, S, 1]
 *
 * and removes `logits` from the graph's outputs, so that ONNX Runtime computes the softmax in C++
 * and only one number per position crosses into JavaScript instead of a whole vocabulary.
 *
 * The rewrite works on the protobuf wire format directly: ModelProto and GraphProto are walked field
 * by field, every field is copied through untouched (initializers are sliced, never decoded), the
 * `logits` output entry is left out, and the new nodes, input and output are appended as further
 * repeated-field entries, which is how protobuf defines concatenation. No ONNX library is needed.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

// Field numbers from onnx.proto3.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_ELEM_TYPE = 1;
const TENSOR_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_PARAM = 2;
const DIM_VALUE = 1;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const ATTR_NAME = 1;
const ATTR_I = 3;
const ATTR_TYPE = 20;
const ATTR_TYPE_INT = 2;
const FLOAT = 1;
const INT64 = 7;

const WIRE_VARINT = 0;
const WIRE_64BIT = 1;
const WIRE_LENGTH = 2;
const WIRE_32BIT = 5;

export const TARGET_IDS = 'target_ids';
export const TARGET_LOGPROBS = 'target_logprobs';

interface Field {
  number: number;
  wire: number;
  /** The whole field, tag included, as it appears in the message. */
  bytes: Uint8Array;
  /** For length-delimited fields, the payload. */
  payload?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return { value, next: pos };
    scale *= 128;
  }
}

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const tag = readVarint(buf, pos);
    pos = tag.next;
    const wire = tag.value % 8;
    const number = Math.floor(tag.value / 8);
    let payload: Uint8Array | undefined;
    if (wire === WIRE_VARINT) pos = readVarint(buf, pos).next;
    else if (wire === WIRE_64BIT) pos += 8;
    else if (wire === WIRE_32BIT) pos += 4;
    else if (wire === WIRE_LENGTH) {
      const length = readVarint(buf, pos);
      payload = buf.subarray(length.next, length.next + length.value);
      pos = length.next + length.value;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (pos > buf.length) throw new Error('truncated protobuf message');
    yield { number, wire, bytes: buf.subarray(start, pos), ...(payload ? { payload } : {}) };
  }
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function bytesField(number: number, payload: Uint8Array | number[]): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : Uint8Array.from(payload);
  return concat([Uint8Array.from([...varint(number * 8 + WIRE_LENGTH), ...varint(body.length)]), body]);
}

function stringField(number: number, text: string): Uint8Array {
  return bytesField(number, new TextEncoder().encode(text));
}

function varintField(number: number, value: number): Uint8Array {
  return Uint8Array.from([...varint(number * 8 + WIRE_VARINT), ...varint(value)]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function valueInfoName(payload: Uint8Array): string | undefined {
  for (const f of fields(payload)) if (f.number === VALUE_INFO_NAME && f.payload) return new TextDecoder().decode(f.payload);
  return undefined;
}

function tensorValueInfo(name: string, elemType: number, dims: Array<string | number>): Uint8Array {
  const shape = concat(dims.map((d) => bytesField(SHAPE_DIM, typeof d === 'string' ? stringField(DIM_PARAM, d) : varintField(DIM_VALUE, d))));
  const tensorType = concat([varintField(TENSOR_ELEM_TYPE, elemType), bytesField(TENSOR_SHAPE, shape)]);
  return concat([stringField(VALUE_INFO_NAME, name), bytesField(VALUE_INFO_TYPE, bytesField(TYPE_TENSOR, tensorType))]);
}

function node(opType: string, name: string, inputs: string[], outputs: string[], intAttributes: Record<string, number>): Uint8Array {
  return concat([
    ...inputs.map((i) => stringField(NODE_INPUT, i)),
    ...outputs.map((o) => stringField(NODE_OUTPUT, o)),
    stringField(NODE_NAME, name),
    stringField(NODE_OP_TYPE, opType),
    ...Object.entries(intAttributes).map(([k, v]) => bytesField(NODE_ATTRIBUTE, concat([stringField(ATTR_NAME, k), varintField(ATTR_I, v), varintField(ATTR_TYPE, ATTR_TYPE_INT)]))),
  ]);
}

/**
 * The model with the log-probability head added and `logits` no longer an output, as a list of chunks
 * (mostly views into `model`) whose concatenation is the new model: written out one by one, a
 * multi-gigabyte graph is never copied in memory.
 */
export function withLogprobHead(model: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let sawGraph = false;
  for (const f of fields(model)) {
    if (f.number !== MODEL_GRAPH || !f.payload) {
      chunks.push(f.bytes);
      continue;
    }
    sawGraph = true;
    const graphParts: Uint8Array[] = [];
    let hadLogits = false;
    for (const g of fields(f.payload)) {
      if (g.number === GRAPH_OUTPUT && g.payload && valueInfoName(g.payload) === 'logits') {
        hadLogits = true;
        continue;
      }
      if (g.number === GRAPH_INPUT && g.payload && valueInfoName(g.payload) === TARGET_IDS) throw new Error('the graph already has a target_ids input');
      graphParts.push(g.bytes);
    }
    if (!hadLogits) throw new Error('the graph has no "logits" output');
    graphParts.push(
      bytesField(GRAPH_NODE, node('LogSoftmax', 'nuggets_log_softmax', ['logits'], ['nuggets_log_probs'], { axis: 2 })),
      bytesField(GRAPH_NODE, node('GatherElements', 'nuggets_gather_targets', ['nuggets_log_probs', TARGET_IDS], [TARGET_LOGPROBS], { axis: 2 })),
      bytesField(GRAPH_INPUT, tensorValueInfo(TARGET_IDS, INT64, ['batch_size', 'sequence_length', 1])),
      bytesField(GRAPH_OUTPUT, tensorValueInfo(TARGET_LOGPROBS, FLOAT, ['batch_size', 'sequence_length', 1])),
    );
    const graphLength = graphParts.reduce((n, p) => n + p.length, 0);
    chunks.push(Uint8Array.from([...varint(MODEL_GRAPH * 8 + WIRE_LENGTH), ...varint(graphLength)]), ...graphParts);
  }
  if (!sawGraph) throw new Error('not an ONNX model: no graph');
  return chunks;
}

/**
 * The path of `onnxPath`'s graph with the head added, written once into `cacheDir` (keyed by the
 * model's fingerprint) and reused. Undefined when the graph keeps its weights in external data files,
 * which a copy elsewhere could not find; those models are scored through their logits instead.
 */
export function graphWithLogprobHead(onnxPath: string, cacheDir: string, fingerprint: string): string | undefined {
  const folder = dirname(onnxPath);
  const name = basename(onnxPath);
  if (readdirSync(folder).some((f) => f !== name && f.startsWith(name))) return undefined; // model.onnx_data, model.onnx.data
  const target = join(cacheDir, 'graphs', `${fingerprint}-logprobs.onnx`);
  if (existsSync(target)) return target;
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    for (const chunk of withLogprobHead(readFileSync(onnxPath))) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, target);
  return target;
}
