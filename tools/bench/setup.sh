#!/usr/bin/env bash
# What `npm run bench` needs beyond `npm ci`: Debian's PyTorch and ONNX for the paper's loop and the
# benchmark models (MACHINE-NOTES), and the GPT-2-small-shaped model (generated, not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! /usr/bin/python3 -c 'import torch, onnx' 2>/dev/null || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-onnx libopenblas0-pthread >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p .cache/bench
/usr/bin/python3 tools/bench/make_bench_model.py --out .cache/bench/gpt2-small
