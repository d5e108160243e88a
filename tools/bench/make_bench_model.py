"""Writes the benchmark's GPT-2-small-shaped model (12 layers, width 768, 12 heads, vocabulary 50,257,
context 1,024) with random weights, as an ONNX model folder in the same layout as the demo model.
Random weights are fine for speed: the work per token does not depend on their values. The demo
tokenizer is copied in (its 4,096 ids fit the larger vocabulary). Not committed: the bench makes it.

    /usr/bin/python3 tools/bench/make_bench_model.py --out .cache/bench/gpt2-small
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'demo_model'))
from gpt import GPT, export_onnx  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--out', required=True)
ap.add_argument('--tokenizer-from', default='models/demo')
ap.add_argument('--vocab', type=int, default=50257)
ap.add_argument('--d', type=int, default=768)
ap.add_argument('--layers', type=int, default=12)
ap.add_argument('--heads', type=int, default=12)
ap.add_argument('--ctx', type=int, default=1024)
args = ap.parse_args()

if os.path.exists(os.path.join(args.out, 'model.onnx')):
    print(f'{args.out} exists')
    sys.exit(0)
os.makedirs(args.out, exist_ok=True)
torch.manual_seed(0)
model = GPT(args.vocab, args.ctx, args.d, args.layers, args.heads)
# Zero biases and unit LayerNorm weights are identical tensors, which the exporter stores once under one
# name; distinct small values keep every parameter under its own name (the PyTorch loop loads by name).
with torch.no_grad():
    for p in model.parameters():
        if p.dim() == 1:
            p.add_(torch.randn_like(p) * 0.02)
tmp = os.path.join(args.out, 'model.onnx.tmp')
export_onnx(model, tmp, args.layers, args.heads, args.d)
os.replace(tmp, os.path.join(args.out, 'model.onnx'))
for f in ('tokenizer.json', 'tokenizer_config.json'):
    shutil.copy(os.path.join(args.tokenizer_from, f), args.out)
config = {'model_type': 'gpt2', 'vocab_size': args.vocab, 'n_positions': args.ctx, 'n_embd': args.d,
          'n_layer': args.layers, 'n_head': args.heads, 'bos_token_id': 0, 'eos_token_id': 0}
with open(os.path.join(args.out, 'config.json'), 'w') as f:
    json.dump(config, f, indent=2)
print(f'wrote {args.out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters')
