/**
 * The final hidden state as one more graph output, added beside the log-probability head
 * (logprob-head.ts): the input of the language-model head, which ALGORITHM.md's embedding signal
 * averages over the candidate's tokens. The prefix pass then returns it at no extra cost.
 *
 * The head is the node that produces `logits`: a MatMul or Gemm (or a 4-bit MatMulNBits) whose first
 * input is the final norm's output; or, in dynamically quantized int8 graphs (onnxruntime's
 * quantize_dynamic, the `model_quantized` exports), Mul(Cast(MatMulInteger(DynamicQuantizeLinear(h), W)),
 * scales), whose float input h is the final norm's output. An Identity node exposes that tensor under a
 * fixed name. Graphs whose head is anything else get no such output, and their embeddings are reported
 * missing.
 */
import type { ByteSource } from './logprob-head';

/** The added output: [batch, sequence, hidden], float32. */
export const FINAL_HIDDEN_STATE = 'final_hidden_state';

const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_OP_TYPE = 4;
const WIRE_LENGTH = 2;

/** Heads whose first input is the hidden state itself. */
const HEAD_OPS = new Set(['MatMul', 'Gemm', 'MatMulNBits']);

/** A node's byte range within the source (the payload of a GraphProto.node field). */
export interface NodeBytes {
  payloadStart: number;
  end: number;
}

/** The name of the tensor the LM head reads, or undefined when the head is not a matrix product we know. */
export function lmHeadInput(source: ByteSource, nodes: readonly NodeBytes[]): string | undefined {
  const producers = new Map<string, GraphNode>();
  for (const node of nodes) {
    const read = readNode(source, node);
    for (const output of read.outputs) producers.set(output, read);
  }
  const head = producers.get('logits');
  if (!head) return undefined;
  if (HEAD_OPS.has(head.opType)) return head.inputs[0];
  return quantizedHeadInput(head, producers);
}

/** The float input of an int8 head: logits = Mul(Cast(MatMulInteger(DynamicQuantizeLinear(h), …)), scales). */
function quantizedHeadInput(head: GraphNode, producers: ReadonlyMap<string, GraphNode>): string | undefined {
  if (head.opType !== 'Mul') return undefined;
  for (const product of head.inputs) {
    const cast = producers.get(product);
    if (cast?.opType !== 'Cast') continue;
    const matmul = producers.get(cast.inputs[0] ?? '');
    if (matmul?.opType !== 'MatMulInteger') continue;
    const quantize = producers.get(matmul.inputs[0] ?? '');
    if (quantize?.opType === 'DynamicQuantizeLinear') return quantize.inputs[0];
  }
  return undefined;
}

interface GraphNode {
  inputs: string[];
  outputs: string[];
  opType: string;
}

function readNode(source: ByteSource, node: NodeBytes): GraphNode {
  const bytes = source.read(node.payloadStart, node.end - node.payloadStart);
  const inputs: string[] = [];
  const outputs: string[] = [];
  let opType = '';
  const decoder = new TextDecoder();
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = bytes[at++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
  };
  while (at < bytes.length) {
    const tag = varint();
    const wire = tag % 8;
    if (wire !== WIRE_LENGTH) {
      if (wire === 0) varint();
      else at += wire === 1 ? 8 : 4;
      continue;
    }
    const length = varint();
    const text = (): string => decoder.decode(bytes.subarray(at, at + length));
    const field = Math.floor(tag / 8);
    if (field === NODE_INPUT) inputs.push(text());
    else if (field === NODE_OUTPUT) outputs.push(text());
    else if (field === NODE_OP_TYPE) opType = text();
    at += length;
  }
  return { inputs, outputs, opType };
}
