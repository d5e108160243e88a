#!/usr/bin/env bash
# What `npm run bench` needs beyond `npm ci`: Debian's PyTorch and ONNX for the paper's loop and the
# benchmark models (MACHINE-NOTES), and the benchmark's models (generated once into .cache/bench, not
# committed; each is rewritten only when its generator changes): GPT-2-small-shaped (W2), the
# SmolLM2-135M shape in fp32, int8 and q4 (W3), the Qwen2.5-0.5B shape in fp32 with external data.
# W4 runs the real SmolLM2-135M-Instruct GGUF (tools/gguf/fetch-smollm2.sh), imports a Qwen2.5-0.5B-shaped
# GGUF (made once by tools/gguf/make_gguf.py, with llama.cpp's `gguf` package), and quantizes the float32 import
# to dynamic int8 with ONNX Runtime's Python quantizer (tools/bench/quantize_int8.py, run by the bench itself once
# the import exists), the same ONNX Runtime version as onnxruntime-node's, in the machine's python3 (pip).
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
bash tools/gguf/fetch-smollm2.sh
python3 -c 'import gguf' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check gguf==0.19.0
python3 -c 'import onnxruntime.quantization, onnx' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check onnxruntime==1.23.2 onnx==1.23.2
if [ ! -s .cache/bench/qwen2.5-0.5b-q4_k_m.gguf ]; then
  python3 tools/gguf/make_gguf.py --shape-0.5b --out .cache/bench/qwen2.5-0.5b-q4_k_m.part.gguf >/dev/null
  mv .cache/bench/qwen2.5-0.5b-q4_k_m.part.gguf .cache/bench/qwen2.5-0.5b-q4_k_m.gguf
fi
