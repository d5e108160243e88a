#!/usr/bin/env bash
# Installs what the project needs on a fresh machine of this kind: the npm dependencies (onnxruntime-node's
# CPU binaries ship inside its package; .npmrc skips its CUDA download).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
# The webview and end-to-end tests: Debian's Chromium and code-server (a real VS Code), skipped when present.
bash tools/setup-e2e.sh
