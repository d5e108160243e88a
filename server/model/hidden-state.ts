/**
 * The final hidden state as one more graph output, added beside the log-probability head
 * (logprob-head.ts): the input of the language-model head, which ALGORITHM.md's embedding signal
 * averages over the candidate's tokens. The prefix pass then returns it at no extra cost.
 *
 * The head is the node that produces `logits`: a MatMul or Gemm (or a 4-bit MatMulNBits) whose first
 * input is the final norm's output; or, in dynamically quantized int8 graphs (onnxruntime's
 * quantize_dynamic, the `model_quantized` exports), Mul(Cast(MatMulInteger(DynamicQuantizeLinear(h), W)),
 * scales), whose float input h is the final norm's output; or, in GGUF imports whose head blocks carry offsets,
 * Add(MatMulNBits(h, …), MatMul(block sums of h, offsets)). An Identity node exposes that tensor under a
 * fixed name. Graphs whose head is anything else get no such output, and their embeddings are reported
 * missing.
 */

/** The added output: [batch, sequence, hidden], float32. */
export const FINAL_HIDDEN_STATE = 'final_hidden_state';

/** Heads whose first input is the hidden state itself. */
const HEAD_OPS = new Set(['MatMul', 'Gemm', 'MatMulNBits']);

/** A graph node's tensor names and operator (as logprob-head.ts reads them from the protobuf). */
export interface GraphNode {
  inputs: string[];
  outputs: string[];
  opType: string;
}

/** The name of the tensor the LM head reads, or undefined when the head is not a matrix product we know. */
export function lmHeadInput(nodes: readonly GraphNode[]): string | undefined {
  const producers = new Map<string, GraphNode>();
  for (const node of nodes) for (const output of node.outputs) producers.set(output, node);
  const head = producers.get('logits');
  if (!head) return undefined;
  if (HEAD_OPS.has(head.opType)) return head.inputs[0];
  return offsetHeadInput(head, producers) ?? quantizedHeadInput(head, producers);
}

/** The input of a head whose blocks carry offsets (GGUF imports, gguf/graph.ts): logits = Add(MatMulNBits(h, …), MatMul(block sums of h, offsets)). */
function offsetHeadInput(head: GraphNode, producers: ReadonlyMap<string, GraphNode>): string | undefined {
  if (head.opType !== 'Add') return undefined;
  const product = head.inputs.map((i) => producers.get(i)).find((p) => p?.opType === 'MatMulNBits');
  return product?.inputs[0];
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
