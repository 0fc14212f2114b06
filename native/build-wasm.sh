#!/usr/bin/env bash
# Builds native/fused_mlp.wasm (committed) from native/src/wasm.cc with Debian's clang and lld
# (apt-get install clang lld). Reproducible: same compiler version, same bytes.
set -euo pipefail
cd "$(dirname "$0")"
clang++ --target=wasm32 -O3 -msimd128 -mbulk-memory -std=c++17 -nostdlib -fno-exceptions -fno-rtti \
  -ffp-contract=fast -Wall -Wextra -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--strip-all -Wl,--initial-memory=1048576 -Wl,--max-memory=2147483648 \
  -o fused_mlp.wasm src/wasm.cc
echo "native/fused_mlp.wasm: $(wc -c < fused_mlp.wasm) bytes, $(clang++ --version | head -1)"
