#!/usr/bin/env bash
# Builds native/fused_mlp.wasm (committed) from native/src/wasm.cc with Debian's clang and lld
# (apt-get install clang lld; Debian 12: clang 14). The same compiler gives the same bytes: the
# tests rebuild it where clang is installed and compare with the committed file.
#   npm run build:wasm            # writes native/fused_mlp.wasm
#   OUT=/tmp/x.wasm native/build-wasm.sh
set -euo pipefail
cd "$(dirname "$0")"
out="${OUT:-fused_mlp.wasm}"
clang++ --target=wasm32 -O3 -msimd128 -mbulk-memory -std=c++17 -nostdlib -fno-exceptions -fno-rtti \
  -ffp-contract=off -Wall -Wextra -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--strip-all -Wl,--initial-memory=1048576 -Wl,--max-memory=2147483648 \
  -o "$out" src/wasm.cc
echo "$out: $(wc -c < "$out") bytes, $(clang++ --version | head -1)"
