#!/usr/bin/env bash
# Sourced by the scripts in scripts/gpu/ on the GPU machine (no Rust toolchain, no network):
# unpacks the Vulkan loader carried in .gl/ and the binaries that `scripts/gpu/pack.sh` put in
# .gpu/, and sets BIN (release `emstudio`), SPEED (`bench_speed`), G (.gpu) and OUT.
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/gpu
G=.gpu
for f in .gl/*.deb; do dpkg -x "$f" / ; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
for z in "$G"/*.xz; do xz -dc "$z" > /tmp/gpu/"$(basename "$z" .xz)"; done
chmod +x /tmp/gpu/*
BIN=/tmp/gpu/emstudio
SPEED=/tmp/gpu/bench_speed
# NVRTC for burn's CUDA backend (cubecl compiles its kernels at run time).
NVRTC=$(dirname "$(find / -name 'libnvrtc.so*' -not -path '*/proc/*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH=${NVRTC}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
