"""W4's dynamic int8 model: a GGUF import's float32 graph quantized with ONNX Runtime's own Python
quantizer, as the hub's `onnx/model_quantized.onnx` exports are made (quantize_dynamic, int8 weights),
into a model folder the engine opens with `variant: 'quantized'`.

    python3 tools/bench/quantize_int8.py FP32_IMPORT_FOLDER OUT_FOLDER

The float32 graph keeps its weights in model.onnx_data beside it (onnx.load reads them from the graph's
folder); the quantized graph writes its own beside it too. The folder is written under a temporary name
and renamed when complete, so that a cut-short run leaves nothing that looks finished.
"""
import logging
import os
import shutil
import sys

from onnx import TensorProto
from onnxruntime.quantization import QuantType, quantize_dynamic

logging.disable(logging.WARNING)  # one warning per untyped tensor: see DefaultTensorType below
source, out = sys.argv[1], sys.argv[2]
partial = out + '.partial'
shutil.rmtree(partial, ignore_errors=True)
os.makedirs(os.path.join(partial, 'onnx'))
quantize_dynamic(os.path.join(source, 'model.onnx'), os.path.join(partial, 'onnx', 'model_quantized.onnx'),
                 weight_type=QuantType.QInt8, use_external_data_format=True,
                 # ONNX's shape inference knows no SimplifiedLayerNormalization or RotaryEmbedding (ONNX Runtime's own
                 # operators, which the import's graph uses), so it leaves their outputs untyped: they are float32.
                 extra_options={'DefaultTensorType': TensorProto.FLOAT})
for name in ('tokenizer.json', 'tokenizer_config.json', 'config.json'):
    shutil.copy(os.path.join(source, name), os.path.join(partial, name))
shutil.rmtree(out, ignore_errors=True)
os.rename(partial, out)
