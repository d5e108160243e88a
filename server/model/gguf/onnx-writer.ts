/**
 * Writes an ONNX model (onnx.proto3) from scratch: nodes, inputs, outputs, and initializers whose bytes
 * go to an external data file as they are added, so that the graph file stays small and the weights
 * are never held twice in memory. Only what the GGUF importer's graphs use is encoded.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

// Field numbers from onnx.proto3.
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8, metadataProps: 14 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const ATTR = { name: 1, f: 2, i: 3, s: 4, floats: 7, ints: 8, type: 20 };
const ATTR_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 };
const VALUE_INFO = { name: 1, type: 2 };
const TYPE_TENSOR = 1;
const TENSOR_TYPE = { elemType: 1, shape: 2 };
const SHAPE_DIM = 1;
const DIM = { value: 1, param: 2 };
const ENTRY = { key: 1, value: 2 };
const OPSET = { domain: 1, version: 2 };
const EXTERNAL = 1;

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

export type AttributeValue = number | string | number[] | { float: number } | { floats: number[] };

/** Weights at or above this size are aligned in the data file to a page, so that ONNX Runtime can map them. */
const ALIGN_FROM = 4096;

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
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

function tag(field: number, wire: number): number[] {
  return varint(field * 8 + wire);
}

function bytesField(field: number, payload: Uint8Array): Uint8Array {
  return concat([Uint8Array.from([...tag(field, 2), ...varint(payload.length)]), payload]);
}

function stringField(field: number, text: string): Uint8Array {
  return bytesField(field, new TextEncoder().encode(text));
}

function varintField(field: number, value: number | bigint): Uint8Array {
  return Uint8Array.from([...tag(field, 0), ...varint(value)]);
}

function floatField(field: number, value: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = field * 8 + 5;
  new DataView(out.buffer).setFloat32(1, value, true);
  return out;
}

function attribute(name: string, value: AttributeValue): Uint8Array {
  const parts = [stringField(ATTR.name, name)];
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`internal: attribute ${name} = ${value} is not an integer; pass { float }`);
    parts.push(varintField(ATTR.i, value), varintField(ATTR.type, ATTR_TYPE.int));
  } else if (typeof value === 'string') parts.push(stringField(ATTR.s, value), varintField(ATTR.type, ATTR_TYPE.string));
  else if (Array.isArray(value)) parts.push(...value.map((v) => varintField(ATTR.ints, v)), varintField(ATTR.type, ATTR_TYPE.ints));
  else if ('float' in value) parts.push(floatField(ATTR.f, value.float), varintField(ATTR.type, ATTR_TYPE.float));
  else parts.push(...value.floats.map((v) => floatField(ATTR.floats, v)), varintField(ATTR.type, ATTR_TYPE.floats));
  return concat(parts);
}

function valueInfo(name: string, elemType: DataType, dims: Array<string | number>): Uint8Array {
  const shape = concat(dims.map((d) => bytesField(SHAPE_DIM, typeof d === 'string' ? stringField(DIM.param, d) : varintField(DIM.value, d))));
  const tensorType = concat([varintField(TENSOR_TYPE.elemType, elemType), bytesField(TENSOR_TYPE.shape, shape)]);
  return concat([stringField(VALUE_INFO.name, name), bytesField(VALUE_INFO.type, bytesField(TYPE_TENSOR, tensorType))]);
}

export class OnnxWriter {
  private readonly nodes: Uint8Array[] = [];
  private readonly initializers: Uint8Array[] = [];
  private readonly inputs: Uint8Array[] = [];
  private readonly outputs: Uint8Array[] = [];
  private readonly dataFd: number;
  private dataLength = 0;
  private nodeCount = 0;
  private constantCount = 0;

  /** `dataPath`: the external data file to create; `dataName`: how the graph names it (relative to the graph file). */
  constructor(dataPath: string, private readonly dataName: string) {
    this.dataFd = openSync(dataPath, 'w');
  }

  input(name: string, type: DataType, dims: Array<string | number>): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: DataType, dims: Array<string | number>): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A weight: its bytes are appended to the external data file now. */
  weight(name: string, type: DataType, dims: number[], data: ArrayBufferView): string {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length >= ALIGN_FROM && this.dataLength % ALIGN_FROM !== 0) {
      const pad = ALIGN_FROM - (this.dataLength % ALIGN_FROM);
      writeSync(this.dataFd, new Uint8Array(pad));
      this.dataLength += pad;
    }
    const offset = this.dataLength;
    for (let at = 0; at < bytes.length; at += 1 << 26) writeSync(this.dataFd, bytes.subarray(at, Math.min(bytes.length, at + (1 << 26))));
    this.dataLength += bytes.length;
    const entry = (key: string, value: string): Uint8Array => bytesField(TENSOR.externalData, concat([stringField(ENTRY.key, key), stringField(ENTRY.value, value)]));
    this.initializers.push(concat([
      ...dims.map((d) => varintField(TENSOR.dims, d)),
      varintField(TENSOR.dataType, type),
      stringField(TENSOR.name, name),
      entry('location', this.dataName),
      entry('offset', String(offset)),
      entry('length', String(bytes.length)),
      varintField(TENSOR.dataLocation, EXTERNAL),
    ]));
    return name;
  }

  /** A small constant kept in the graph itself (shapes, axes, scalars). */
  constant(type: DataType, dims: number[], data: ArrayBufferView, name = `const_${this.constantCount++}`): string {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push(concat([
      ...dims.map((d) => varintField(TENSOR.dims, d)),
      varintField(TENSOR.dataType, type),
      stringField(TENSOR.name, name),
      bytesField(TENSOR.rawData, bytes),
    ]));
    return name;
  }

  ints(values: number[]): string {
    return this.constant(DataType.INT64, [values.length], BigInt64Array.from(values, (v) => BigInt(v)));
  }

  scalar(value: number): string {
    return this.constant(DataType.FLOAT, [], Float32Array.of(value));
  }

  /** Adds a node and returns its first output's name (outputs default to one fresh name). */
  node(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, options: { outputs?: string[]; domain?: string; name?: string } = {}): string {
    const id = this.nodeCount++;
    const name = options.name ?? `${opType}_${id}`;
    const outputs = options.outputs ?? [`${name}_out`];
    this.nodes.push(concat([
      ...inputs.map((i) => stringField(NODE.input, i)),
      ...outputs.map((o) => stringField(NODE.output, o)),
      stringField(NODE.name, name),
      stringField(NODE.opType, opType),
      ...Object.entries(attributes).map(([k, v]) => bytesField(NODE.attribute, attribute(k, v))),
      ...(options.domain ? [stringField(NODE.domain, options.domain)] : []),
    ]));
    return outputs[0]!;
  }

  /** Closes the data file and returns the model's bytes. */
  finish(opsets: Record<string, number>, metadata: Record<string, string> = {}): Uint8Array {
    closeSync(this.dataFd);
    const graph = concat([
      ...this.nodes.map((n) => bytesField(GRAPH.node, n)),
      stringField(GRAPH.name, 'nuggets_gguf_import'),
      ...this.initializers.map((t) => bytesField(GRAPH.initializer, t)),
      ...this.inputs.map((i) => bytesField(GRAPH.input, i)),
      ...this.outputs.map((o) => bytesField(GRAPH.output, o)),
    ]);
    return concat([
      varintField(MODEL.irVersion, 8),
      stringField(MODEL.producerName, 'nuggets'),
      bytesField(MODEL.graph, graph),
      ...Object.entries(opsets).map(([domain, version]) => bytesField(MODEL.opsetImport, concat([stringField(OPSET.domain, domain), varintField(OPSET.version, version)]))),
      ...Object.entries(metadata).map(([key, value]) => bytesField(MODEL.metadataProps, concat([stringField(ENTRY.key, key), stringField(ENTRY.value, value)]))),
    ]);
  }
}
