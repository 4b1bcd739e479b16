#!/usr/bin/env bash
# Builds the inputs of scripts/gpu/run_gpu_bench.sh into .gpu/ (git-ignored): release
# `emstudio` and `bench_speed` with burn's `wgpu` backend (Vulkan on an NVIDIA GPU), stripped
# and xz-compressed, plus the EM data they train on; and the Vulkan loader packages into .gl/
# (wgpu needs libvulkan on a machine that has only the driver). With EMSTUDIO_CUDA=1 the `cuda`
# backend is built too: burn-cuda 0.22 compiles kernels through cubecl-llvm, whose build
# downloads a prebuilt LLVM 23 bundle (tracel-llvm-bundler), so that needs a machine that can
# reach GitHub; ours cannot.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${EMSTUDIO_DATA:-../shared/data}
FEATURES="emstudio-companion/wgpu emstudio-nets/wgpu"
if [ "${EMSTUDIO_CUDA:-0}" = 1 ]; then
  FEATURES="$FEATURES emstudio-companion/cuda emstudio-nets/cuda"
  export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
fi
cargo build --release -p emstudio-companion -p emstudio-nets --features "$FEATURES" \
  --bin emstudio --example bench_speed
T=${CARGO_TARGET_DIR:-target}/release
rm -rf .gpu && mkdir -p .gpu/data
for b in "$T/emstudio" "$T/examples/bench_speed"; do
  strip -o ".gpu/$(basename "$b")" "$b"
  xz -6 -T2 ".gpu/$(basename "$b")"
done
cp -r "$DATA/epfl-hippocampus-mito" .gpu/data/epfl
cp -r "$DATA/uniem-ac3-mito" .gpu/data/ac3
# The model that scripts/gpu/ac3_folds.sh fine-tunes (BENCHMARKS.md, issue 4: EPFL, 10000 steps).
if [ -n "${EMSTUDIO_EPFL_MODEL:-}" ]; then cp "$EMSTUDIO_EPFL_MODEL" .gpu/epfl10k.emsmodel; fi
if [ ! -d .gl ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .gpu .gl
