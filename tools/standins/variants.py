"""The hub's variants of an fp32 ONNX export, rewritten with the onnx helper API:

- int8 (onnx/model_quantized.onnx), as ONNX Runtime's dynamic quantization writes it: each MatMul
  with a constant weight becomes DynamicQuantizeLinear on the activation (uint8, scale and zero point
  computed at run time over the whole input tensor), MatMulInteger against the weight quantized to
  int8 (symmetric, one scale per tensor), Cast to float, and Mul by the product of the two scales.
  One DynamicQuantizeLinear serves every MatMul that reads the same activation.
- 4-bit (onnx/model_q4.onnx): com.microsoft MatMulNBits, bits 4, block_size 32: per output column,
  blocks of 32 weights along K, each with a float scale and a 4-bit zero point (asymmetric,
  w = (q - zero_point) * scale); two 4-bit values per byte, the lower index in the low nibble.
- fp16 (onnx/model_fp16.onnx): weights stored as float16, and the key/value inputs and outputs and
  the logits in float16, as fp16 exports on the hub have them; arithmetic runs in float32 behind
  Cast nodes.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _constant_weights(graph):
    return {init.name: init for init in graph.initializer if init.data_type == TensorProto.FLOAT and len(init.dims) == 2}


def _rewrite_matmuls(model, replace):
    """Replaces each MatMul whose second input is a 2-D float initializer by the nodes `replace`
    returns (nodes, new initializers); other nodes stay in order."""
    graph = model.graph
    weights = _constant_weights(graph)
    used = {}
    nodes = []
    for node in graph.node:
        if node.op_type == 'MatMul' and node.input[1] in weights:
            new_nodes, new_inits = replace(node, numpy_helper.to_array(weights[node.input[1]]))
            nodes += new_nodes
            graph.initializer.extend(new_inits)
            used[node.input[1]] = True
        else:
            nodes.append(node)
    still_read = {i for n in nodes for i in n.input}
    kept = [init for init in graph.initializer if not (init.name in used and init.name not in still_read)]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)


def dynamic_int8(model):
    quantized_inputs = {}

    def replace(node, w):
        x, name, out = node.input[0], node.input[1], node.output[0]
        nodes = []
        if x not in quantized_inputs:
            quantized_inputs[x] = (f'{x}_quantized', f'{x}_scale', f'{x}_zero_point')
            nodes.append(helper.make_node('DynamicQuantizeLinear', [x], list(quantized_inputs[x]), name=f'{x}_QuantizeLinear'))
        xq, xs, xz = quantized_inputs[x]
        scale = max(float(np.abs(w).max()), 1e-8) / 127.0
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        inits = [numpy_helper.from_array(q, f'{name}_quantized'),
                 numpy_helper.from_array(np.array(scale, dtype=np.float32), f'{name}_scale'),
                 numpy_helper.from_array(np.array(0, dtype=np.int8), f'{name}_zero_point')]
        nodes += [
            helper.make_node('MatMulInteger', [xq, f'{name}_quantized', xz, f'{name}_zero_point'], [f'{out}_output_quantized'], name=f'{node.name}_quant'),
            helper.make_node('Cast', [f'{out}_output_quantized'], [f'{out}_output_quantized_cast_output'], to=TensorProto.FLOAT, name=f'{out}_output_quantized_cast'),
            helper.make_node('Mul', [xs, f'{name}_scale'], [f'{out}_scales_mul'], name=f'{out}_scales_mul'),
            helper.make_node('Mul', [f'{out}_output_quantized_cast_output', f'{out}_scales_mul'], [out], name=f'{out}_output_scale_mul'),
        ]
        return nodes, inits

    _rewrite_matmuls(model, replace)
    return model


BLOCK = 32


def matmul_nbits_4(model):
    def replace(node, w):
        k, n = w.shape
        blocks = -(-k // BLOCK)
        padded = np.zeros((blocks * BLOCK, n), dtype=np.float32)
        padded[:k] = w
        per_block = padded.T.reshape(n, blocks, BLOCK)
        low = np.minimum(per_block.min(axis=2), 0.0)
        high = np.maximum(per_block.max(axis=2), 0.0)
        scale = np.maximum(high - low, 1e-8) / 15.0
        zero = np.clip(np.round(-low / scale), 0, 15).astype(np.uint8)
        q = np.clip(np.round(per_block / scale[..., None]) + zero[..., None], 0, 15).astype(np.uint8)
        packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)  # [n, blocks, 16]
        zero_padded = np.zeros((n, blocks + blocks % 2), dtype=np.uint8)
        zero_padded[:, :blocks] = zero
        zero_packed = (zero_padded[:, 0::2] | (zero_padded[:, 1::2] << 4)).astype(np.uint8).reshape(-1)
        name = node.input[1]
        inits = [numpy_helper.from_array(packed, f'{name}_Q4'),
                 numpy_helper.from_array(scale.astype(np.float32).reshape(-1), f'{name}_scales'),
                 numpy_helper.from_array(zero_packed, f'{name}_zero_points')]
        nbits = helper.make_node('MatMulNBits', [node.input[0], f'{name}_Q4', f'{name}_scales', f'{name}_zero_points'],
                                 list(node.output), name=f'{node.name}_Q4', domain='com.microsoft',
                                 K=k, N=n, bits=4, block_size=BLOCK)
        return [nbits], inits

    _rewrite_matmuls(model, replace)
    if not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    return model


def float16_io(model):
    graph = model.graph
    renamed = {}
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f'{init.name}_fp16')
        casts.append(helper.make_node('Cast', [half.name], [init.name], to=TensorProto.FLOAT, name=f'{init.name}_to_fp32'))
        graph.initializer.remove(init)
        graph.initializer.append(half)
    for value in graph.input:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
            renamed[value.name] = f'{value.name}_fp32'
            casts.append(helper.make_node('Cast', [value.name], [renamed[value.name]], to=TensorProto.FLOAT, name=f'{value.name}_to_fp32'))
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    outputs = {}
    for value in graph.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
            outputs[value.name] = f'{value.name}_fp32'
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name in outputs:
                node.output[i] = outputs[name]
        for i, name in enumerate(node.input):
            if name in outputs:
                node.input[i] = outputs[name]
    tail = [helper.make_node('Cast', [inner], [outer], to=TensorProto.FLOAT16, name=f'{outer}_to_fp16') for outer, inner in outputs.items()]
    nodes = casts + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return model
