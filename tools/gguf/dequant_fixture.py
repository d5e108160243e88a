"""Dequantization fixture for the TypeScript GGUF dequantizer's unit test.

Development and test tooling only: nothing a user runs needs Python. For every tensor of a
GGUF file, the values come from llama.cpp's own Python reference (gguf.GGUFReader +
gguf.quants.dequantize), never from our code.

Usage:

    python3 tools/gguf/dequant_fixture.py X.gguf OUT.json

OUT.json:

    {"gguf": "X.gguf", "tensor_count": N, "tensors": [
      {"name": "blk.0.attn_q.weight", "type": "Q4_K", "type_id": 12,
       "shape": [256, 256],          # GGUF order: ne[0] (contiguous, row length) first
       "n": 65536, "offset": 12345,  # element count; absolute byte offset of the data in the file
       "first": [64 values], "last": [64 values],   # flat (row-major over the numpy shape) order
       "sum": 1.23, "sumsq": 4.56},  # float64 sum and sum of squares of all values
      ...]}

Values are the float32 results of gguf.quants.dequantize written as JSON float64 numbers
(exact). sum/sumsq are accumulated in float64 (numpy pairwise summation, per row chunk), so a
TypeScript float64 accumulation in any order agrees to ~1e-12 relative. Tensors shorter than
64 elements give all their values in both first and last.

Requires: pip install gguf==0.19.0 numpy (no torch).
"""
import json
import os
import sys

import numpy as np
import gguf


def describe(tensor, chunk_rows=4096):
    raw = np.asarray(tensor.data)
    if raw.ndim == 1:
        raw = raw[None, :]
    rows = raw.reshape(-1, raw.shape[-1])  # one GGUF row (ne[0] values) per line for 2-D+ tensors
    total = s = ss = 0.0
    first, tail = [], None
    for start in range(0, rows.shape[0], chunk_rows):
        y = gguf.quants.dequantize(rows[start:start + chunk_rows], tensor.tensor_type)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(first) < 64:
            first.extend(y[:64 - len(first)].tolist())
        tail = y[-64:] if tail is None or y.size >= 64 else np.concatenate([tail, y])[-64:]
        s += float(np.sum(y))
        ss += float(np.sum(y * y))
        total += y.size
    assert int(total) == int(tensor.n_elements), (tensor.name, total, tensor.n_elements)
    return {
        'name': tensor.name,
        'type': tensor.tensor_type.name,
        'type_id': int(tensor.tensor_type),
        'shape': [int(n) for n in tensor.shape.tolist()],
        'n': int(tensor.n_elements),
        'offset': int(tensor.data_offset),
        'first': first,
        'last': tail.tolist(),
        'sum': s,
        'sumsq': ss,
    }


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    path, out = sys.argv[1], sys.argv[2]
    reader = gguf.GGUFReader(path)
    tensors = [describe(t) for t in reader.tensors]
    with open(out, 'w') as f:
        json.dump({'gguf': os.path.basename(path), 'tensor_count': len(tensors), 'tensors': tensors}, f)
        f.write('\n')
    kinds = {}
    for t in tensors:
        kinds[t['type']] = kinds.get(t['type'], 0) + 1
    print(f'wrote {out}: {len(tensors)} tensors ({", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))})')


if __name__ == '__main__':
    main()
