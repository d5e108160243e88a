/**
 * Adds a log-probability head to a causal LM graph, in memory, before the session is created:
 *
 *   logits [B, S, V] -> LogSoftmax(axis 2) -> GatherElements(target_ids [B, S, 1], axis 2) -> target_logprobs [B, S, 1]
 *
 * and removes `logits` from the graph's outputs, so that ONNX Runtime computes the softmax in C++
 * and only one number per position crosses into JavaScript instead of a whole vocabulary. The LM
 * head's input also becomes an output, `final_hidden_state` (hidden-state.ts), for the embedding signal.
 *
 * The rewrite works on the protobuf wire format directly: ModelProto and GraphProto are walked field
 * by field with positional reads, every field is copied through as a byte range of the file
 * (initializers are never decoded or held in memory), the `logits` output entry is left out, and the
 * new nodes, input and output are appended as further repeated-field entries, which is how protobuf
 * defines concatenation. No ONNX library is needed, and memory use does not grow with the model.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FINAL_HIDDEN_STATE, lmHeadInput, type GraphNode } from './hidden-state';

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
const ATTR_G = 6;
const ATTR_GRAPHS = 11;
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
/** Part of the rewritten graph's cache name: raised when the rewrite changes, so that older rewrites are not reused. */
const REWRITE_VERSION = 2;

/** Random access to the model's bytes: a file read piece by piece, or bytes already in memory. */
export interface ByteSource {
  length: number;
  read(position: number, length: number): Uint8Array;
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return { length: bytes.length, read: (position, length) => bytes.subarray(position, position + length) };
}

function fileSource(fd: number): ByteSource {
  return {
    length: fstatSync(fd).size,
    read: (position, length) => {
      const out = Buffer.allocUnsafe(length);
      const n = readSync(fd, out, 0, length, position);
      return out.subarray(0, n);
    },
  };
}

interface Field {
  number: number;
  /** Where the field starts (its tag), where its payload starts, and where it ends, in the source. */
  start: number;
  payloadStart: number;
  end: number;
}

function readVarint(source: ByteSource, position: number): { value: number; next: number } {
  const bytes = source.read(position, 10);
  let value = 0;
  let scale = 1;
  for (let i = 0; i < bytes.length; i++) {
    value += (bytes[i]! & 0x7f) * scale;
    if (bytes[i]! < 0x80) return { value, next: position + i + 1 };
    scale *= 128;
  }
  throw new Error('truncated protobuf varint');
}

function* fields(source: ByteSource, from: number, to: number): Generator<Field> {
  let position = from;
  while (position < to) {
    const start = position;
    const tag = readVarint(source, position);
    position = tag.next;
    const wire = tag.value % 8;
    let payloadStart = position;
    if (wire === WIRE_VARINT) position = readVarint(source, position).next;
    else if (wire === WIRE_64BIT) position += 8;
    else if (wire === WIRE_32BIT) position += 4;
    else if (wire === WIRE_LENGTH) {
      const length = readVarint(source, position);
      payloadStart = length.next;
      position = length.next + length.value;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (position > to) throw new Error('truncated protobuf message');
    yield { number: Math.floor(tag.value / 8), start, payloadStart, end: position };
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

/** A length-delimited field's payload as UTF-8 text. */
function fieldText(source: ByteSource, f: Field): string {
  return new TextDecoder().decode(source.read(f.payloadStart, f.end - f.payloadStart));
}

function valueInfoName(source: ByteSource, info: Field): string | undefined {
  for (const f of fields(source, info.payloadStart, info.end)) {
    if (f.number === VALUE_INFO_NAME) return fieldText(source, f);
  }
  return undefined;
}

/** A node's inputs, outputs and operator type. */
function readNode(source: ByteSource, node: Field): GraphNode {
  const read: GraphNode = { inputs: [], outputs: [], opType: '' };
  for (const f of fields(source, node.payloadStart, node.end)) {
    if (f.number === NODE_INPUT) read.inputs.push(fieldText(source, f));
    else if (f.number === NODE_OUTPUT) read.outputs.push(fieldText(source, f));
    else if (f.number === NODE_OP_TYPE) read.opType = fieldText(source, f);
  }
  return read;
}

/** The element type of a tensor-typed value info (1 float32, 10 float16, ...). */
function valueInfoElementType(source: ByteSource, info: Field): number | undefined {
  const inner = (field: Field | undefined, number: number): Field | undefined =>
    field && [...fields(source, field.payloadStart, field.end)].find((f) => f.number === number);
  const tensor = inner(inner(info, VALUE_INFO_TYPE), TYPE_TENSOR);
  const elem = inner(tensor, TENSOR_ELEM_TYPE);
  return elem && readVarint(source, elem.payloadStart).value;
}

const ELEMENT_TYPES: Record<number, string> = { 1: 'float32', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

/**
 * The operator types of a model's nodes, subgraphs included (the branches of If nodes), read from
 * the protobuf without decoding initializers.
 */
export function graphOperators(onnxPath: string): Set<string> {
  const fd = openSync(onnxPath, 'r');
  try {
    const source = fileSource(fd);
    const found = new Set<string>();
    const visitGraph = (graph: Field): void => {
      for (const g of fields(source, graph.payloadStart, graph.end)) {
        if (g.number !== GRAPH_NODE) continue;
        for (const n of fields(source, g.payloadStart, g.end)) {
          if (n.number === NODE_OP_TYPE) found.add(fieldText(source, n));
          if (n.number !== NODE_ATTRIBUTE) continue;
          for (const a of fields(source, n.payloadStart, n.end)) if (a.number === ATTR_G || a.number === ATTR_GRAPHS) visitGraph(a);
        }
      }
    };
    for (const f of fields(source, 0, source.length)) if (f.number === MODEL_GRAPH) visitGraph(f);
    return found;
  } finally {
    closeSync(fd);
  }
}

/**
 * The files beside `onnxPath` that hold its external weights (model.onnx_data, model.onnx.data, ...),
 * named as exporters name them.
 */
export function externalDataFiles(onnxPath: string): string[] {
  const name = basename(onnxPath);
  return readdirSync(dirname(onnxPath)).filter((f) => f !== name && f.startsWith(name)).map((f) => join(dirname(onnxPath), f));
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

/** A piece of the rewritten model: a byte range of the source, or new bytes. */
export type Piece = { from: number; to: number } | Uint8Array;

/**
 * The model with the log-probability head added and `logits` no longer an output, as pieces whose
 * concatenation is the new model. Throws, before anything is written, when the source is not a
 * causal LM graph with a `logits` output.
 */
export function withLogprobHead(source: ByteSource): Piece[] {
  const pieces: Piece[] = [];
  let sawGraph = false;
  for (const f of fields(source, 0, source.length)) {
    if (f.number !== MODEL_GRAPH) {
      pieces.push({ from: f.start, to: f.end });
      continue;
    }
    sawGraph = true;
    const graphPieces: Piece[] = [];
    let hadLogits = false;
    const nodes: GraphNode[] = [];
    for (const g of fields(source, f.payloadStart, f.end)) {
      if (g.number === GRAPH_NODE) nodes.push(readNode(source, g));
      const name = g.number === GRAPH_OUTPUT || g.number === GRAPH_INPUT ? valueInfoName(source, g) : undefined;
      if (g.number === GRAPH_OUTPUT && name === 'logits') {
        const type = valueInfoElementType(source, g);
        if (type !== FLOAT) throw new Error(`the graph's logits are ${ELEMENT_TYPES[type ?? 0] ?? `of element type ${type}`}, not float32`);
        hadLogits = true;
        continue;
      }
      if (g.number === GRAPH_INPUT && name === TARGET_IDS) throw new Error('the graph already has a target_ids input');
      graphPieces.push({ from: g.start, to: g.end });
    }
    if (!hadLogits) throw new Error('the graph has no "logits" output');
    graphPieces.push(
      bytesField(GRAPH_NODE, node('LogSoftmax', 'nuggets_log_softmax', ['logits'], ['nuggets_log_probs'], { axis: 2 })),
      bytesField(GRAPH_NODE, node('GatherElements', 'nuggets_gather_targets', ['nuggets_log_probs', TARGET_IDS], [TARGET_LOGPROBS], { axis: 2 })),
      bytesField(GRAPH_INPUT, tensorValueInfo(TARGET_IDS, INT64, ['batch_size', 'sequence_length', 1])),
      bytesField(GRAPH_OUTPUT, tensorValueInfo(TARGET_LOGPROBS, FLOAT, ['batch_size', 'sequence_length', 1])),
    );
    const hidden = lmHeadInput(nodes);
    if (hidden !== undefined) {
      graphPieces.push(
        bytesField(GRAPH_NODE, node('Identity', 'nuggets_final_hidden_state', [hidden], [FINAL_HIDDEN_STATE], {})),
        bytesField(GRAPH_OUTPUT, tensorValueInfo(FINAL_HIDDEN_STATE, FLOAT, ['batch_size', 'sequence_length', 'hidden_size'])),
      );
    }
    const graphLength = graphPieces.reduce((n, p) => n + (p instanceof Uint8Array ? p.length : p.to - p.from), 0);
    pieces.push(Uint8Array.from([...varint(MODEL_GRAPH * 8 + WIRE_LENGTH), ...varint(graphLength)]), ...graphPieces);
  }
  if (!sawGraph) throw new Error('not an ONNX model: no graph');
  return pieces;
}

/** The pieces' bytes in memory (small models and tests). */
export function assemble(source: ByteSource, pieces: Piece[]): Uint8Array {
  return concat(pieces.map((p) => (p instanceof Uint8Array ? p : source.read(p.from, p.to - p.from))));
}

/**
 * The path of `onnxPath`'s graph with the head added, written once into `cacheDir`/graphs (keyed by
 * the model's fingerprint) and reused. A graph whose weights live in external data files is copied
 * without them (the file holds only the graph); its session is then created from these bytes with
 * the original folder named as the place of its weights (see OnnxCausalLM.load).
 */
export function graphWithLogprobHead(onnxPath: string, cacheDir: string, fingerprint: string): string {
  const target = join(cacheDir, 'graphs', `${fingerprint}-logprobs-hidden-v${REWRITE_VERSION}.onnx`);
  if (existsSync(target)) return target;
  const input = openSync(onnxPath, 'r');
  try {
    const source = fileSource(input);
    const pieces = withLogprobHead(source);
    mkdirSync(dirname(target), { recursive: true });
    const temporary = `${target}.tmp-${process.pid}`;
    const output = openSync(temporary, 'w');
    try {
      for (const piece of pieces) {
        if (piece instanceof Uint8Array) writeSync(output, piece);
        else for (let at = piece.from; at < piece.to; at += COPY_CHUNK) writeSync(output, source.read(at, Math.min(COPY_CHUNK, piece.to - at)));
      }
    } catch (err) {
      closeSync(output);
      rmSync(temporary, { force: true });
      throw err;
    }
    closeSync(output);
    renameSync(temporary, target);
    return target;
  } finally {
    closeSync(input);
  }
}

const COPY_CHUNK = 1 << 22;
