"""A one-node ONNX MatMul graph, Y = A x B with B [K, N] a constant initializer as model weights are
(so that ONNX Runtime pre-packs it the same way), for measuring the runtime's matmul GFLOP/s."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

k, n = int(sys.argv[2]), int(sys.argv[3])
weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n), dtype=np.float32), 'B')
a = helper.make_tensor_value_info('A', TensorProto.FLOAT, ['M', k])
y = helper.make_tensor_value_info('Y', TensorProto.FLOAT, ['M', n])
graph = helper.make_graph([helper.make_node('MatMul', ['A', 'B'], ['Y'])], 'matmul', [a], [y], [weights])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 14)])
model.ir_version = 8
onnx.save(model, sys.argv[1])
