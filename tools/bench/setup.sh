#!/usr/bin/env bash
# What `npm run bench` needs beyond `npm ci`: Debian's PyTorch and ONNX for the paper's loop and the
# benchmark models (MACHINE-NOTES), and the benchmark's models (generated once into .cache/bench, not
# committed; each is rewritten only when its generator changes): GPT-2-small-shaped (W2), the
# SmolLM2-135M shape in fp32, int8 and q4 (W3), the Qwen2.5-0.5B shape in fp32 with external data.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! /usr/bin/python3 -c 'import torch, onnx' 2>/dev/null || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-onnx libopenblas0-pthread >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p .cache/bench
/usr/bin/python3 tools/bench/make_bench_model.py --out .cache/bench/gpt2-small
/usr/bin/python3 tools/standins/make_standins.py --out .cache/bench --only smollm2 --name smollm2-135m --variants fp32,quantized,q4 \
  --layers 30 --hidden 576 --heads 9 --kv-heads 3 --intermediate 1536 --vocab-size 49152
/usr/bin/python3 tools/standins/make_standins.py --out .cache/bench --only qwen2 --name qwen2.5-0.5b --variants fp32 --external-data \
  --layers 24 --hidden 896 --heads 14 --kv-heads 2 --intermediate 4864 --vocab-size 151936
