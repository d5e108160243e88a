"""The float64 reference (reference.py) with llama.cpp's CPU rounding simulated, to explain where
llama.cpp's log-probabilities differ from ours (development tool for tools/gguf/llama-cpp-logits.ts;
not used by the tests).

--mode q8act: every matrix product's activations quantized as ggml's CPU backend does before a
quantized dot product: for Q4_1 weights to Q8_1 blocks, for Q8_0 weights (the tied LM head) to Q8_0
blocks. Both are 32 values x = d * q with d = max|x| / 127 (stored as float16) and q = round(x / d)
in [-127, 127]; the weights are exact either way. (Q8_1's stored block sum s = d * sum(q), which
multiplies Q4_1's offset m, is rounded to float16 too; that term is not simulated.)
--mode q8act+f16qkv: also Q (after RoPE), K (after RoPE) and V rounded to float16, as an F16
key/value cache makes them (ggml converts Q to the cache's type for the Q.K product).

Same stdin/stdout JSON as reference.py ({"gguf": ..., "rows": [...]}: {"sums", "logprobs"}).

--write-f32 IN OUT: a copy of the GGUF file IN with every tensor dequantized to F32 (by the `gguf`
package, in float32 as ggml dequantizes) and the metadata as is (general.file_type set to ALL_F32).
llama.cpp multiplies F32 weights in float32 without quantizing the activations, so this copy runs
llama.cpp's graph with the same weight values and none of the activation quantization.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

QK = 32


def quantize_q8(x):
    """x [..., n] (n a multiple of 32) -> d16 * round(x / d), per block of 32, d = amax / 127."""
    shape = x.shape
    b = x.reshape(-1, QK).astype(np.float32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = amax / np.float32(127)
    inv = np.where(d > 0, np.float32(1) / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.rint(b * inv)  # ggml's AVX paths round half to even
    d16 = d.astype(np.float16).astype(np.float64)
    return (d16 * q).reshape(shape)


class QuantizedRight:
    """A weight matrix [in, out] whose left operand is quantized to 8-bit blocks before `x @ W`."""
    __array_ufunc__ = None  # make ndarray @ QuantizedRight defer to __rmatmul__

    def __init__(self, w, round_v_from=None):
        self.w = w
        self.round_v_from = round_v_from

    def __rmatmul__(self, x):
        y = quantize_q8(x) @ self.w
        if self.round_v_from is not None:  # V's columns of the fused q|k|v product, as an F16 cache holds them
            y[:, self.round_v_from:] = y[:, self.round_v_from:].astype(np.float16).astype(np.float64)
        return y


class Simulated(reference.GGUFModel):
    def __init__(self, path, f16qkv):
        super().__init__(path)
        self.f16qkv = f16qkv

    def stacked(self, names):
        w = super().stacked(names)
        v_from = None
        if self.f16qkv and names[-1].endswith('attn_v.weight'):
            v_from = w.shape[1] - int(self.tensors[names[-1]].shape[1])
        return QuantizedRight(w, v_from)

    def _rope(self, x, cos, sin):
        super()._rope(x, cos, sin)
        if self.f16qkv:
            x[...] = x.astype(np.float16).astype(np.float64)

    def log_probs(self, hidden_rows, chunk=256):
        return super().log_probs(quantize_q8(hidden_rows), chunk)


def write_f32(source, target):
    import gguf
    reader = gguf.GGUFReader(source)
    arch = reader.fields['general.architecture'].contents()
    writer = gguf.GGUFWriter(target, arch)
    for field in reader.fields.values():
        if field.name == 'general.architecture' or field.name.startswith('GGUF.'):
            continue
        value = field.contents()
        if field.name == 'general.file_type':
            value = int(gguf.LlamaFileType.ALL_F32)
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    for t in reader.tensors:
        values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, values.reshape(tuple(int(n) for n in reversed(t.shape.tolist()))))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--mode', choices=['q8act', 'q8act+f16qkv'], default='q8act')
    parser.add_argument('--write-f32', nargs=2, metavar=('IN', 'OUT'))
    parsed = parser.parse_args()
    if parsed.write_f32:
        write_f32(*parsed.write_f32)
        return
    mode = parsed.mode
    job = json.load(sys.stdin)
    model = Simulated(job['gguf'], mode == 'q8act+f16qkv')
    rows = [([int(t) for t in row['tokens']], int(row['from']), int(row['to'])) for row in job['rows']]
    results = model.score_rows(rows)
    json.dump({'sums': [math.fsum(v) for v, _ in results], 'logprobs': [v for v, _ in results]}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
