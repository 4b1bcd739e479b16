#!/usr/bin/env bash
# Why `emstudio train` ran 3.5× slower on a GPU than `bench_speed` for the same network, batch
# and patch (H100, session 4: 0.57 against 2.0 steps/s). Runs the same work four ways on wgpu,
# short, one at a time, and writes the CLI's summary lines into $OUT/cli-speed.log:
#   bench        bench_speed: one slice, no augmentation, constant rate, no validation;
#   cli-plain    `emstudio train` under the same conditions;
#   cli-aug      + the default augmentation;
#   cli-full     + five slices, a validation slice and a cosine rate (session 4's run);
# then `emstudio infer` over seven slices with the cli-full model. Each for the width-32 U-Net
# at batch 8 × 256² (session 4's setting) and the width-8 U-Net at batch 4 × 128² (the
# mitochondria protocol of BENCHMARKS.md), 24 and 60 steps. Inputs come from scripts/gpu/pack.sh.
set -u
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/gpu/setup.sh
source scripts/gpu/setup.sh
D=$G/data/epfl
LOG=$OUT/cli-speed.log
run() { # label command...
  local t0
  t0=$(date +%s.%N)
  local line
  line=$("${@:2}" 2>&1 | tee -a "$OUT/cli-runs.log" | tail -1)
  echo "$1: $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s wall | $line" | tee -a "$LOG"
}
for net in "32 8 256 24" "8 4 128 60"; do
  read -r width batch patch STEPS <<< "$net"
  arch="{\"arch\":\"unet\",\"depth\":4,\"base_width\":$width}"
  echo "== U-Net width $width, batch $batch x $patch^2, $STEPS steps" | tee -a "$LOG"
  run bench env EMSTUDIO_BENCH_DEVICE=wgpu timeout 120 "$SPEED" "$arch" "$D/image/0000.png" "$D/label/0000.png" "$batch" "$patch" "$STEPS" 256
  common=(train --image "$D/image" --label "$D/label" --arch unet --depth 4 --base-width "$width"
    --batch "$batch" --patch "$patch" --steps "$STEPS" --device wgpu --quiet)
  run cli-plain timeout 120 "$BIN" "${common[@]}" --slices 0 --no-augment --schedule constant \
    --validation-every 0 -o /tmp/gpu/plain.emsmodel
  run cli-aug timeout 120 "$BIN" "${common[@]}" --slices 0 --schedule constant \
    --validation-every 0 -o /tmp/gpu/aug.emsmodel
  run cli-full timeout 120 "$BIN" "${common[@]}" --slices 0-4 --validation-slices 5 \
    --validation-every 250 -o /tmp/gpu/full.emsmodel
  run infer timeout 120 "$BIN" infer -m /tmp/gpu/full.emsmodel -i "$D/image" --slices 20-26 \
    --device wgpu --quiet -o /tmp/gpu/prob.tif
done
