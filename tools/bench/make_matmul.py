"""A one-node ONNX MatMul graph (A [M, K] x B [K, N]) for measuring ONNX Runtime's matmul GFLOP/s."""
import sys

import onnx
from onnx import TensorProto, helper

a = helper.make_tensor_value_info('A', TensorProto.FLOAT, ['M', 'K'])
b = helper.make_tensor_value_info('B', TensorProto.FLOAT, ['K', 'N'])
y = helper.make_tensor_value_info('Y', TensorProto.FLOAT, ['M', 'N'])
graph = helper.make_graph([helper.make_node('MatMul', ['A', 'B'], ['Y'])], 'matmul', [a, b], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 14)])
model.ir_version = 8
onnx.save(model, sys.argv[1])
