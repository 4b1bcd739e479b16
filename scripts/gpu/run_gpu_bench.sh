#!/usr/bin/env bash
# The GPU half of the networks' benchmarks, for a CUDA machine with no Rust toolchain and no
# network (the workplace's lent H100/H200). `scripts/gpu/pack.sh` builds its inputs on a
# development machine into .gpu/ (release `emstudio` and `bench_speed` with the `wgpu` feature,
# and `cuda` where it could be built, the EM data); this script, run from the repository root
# there, writes its logs and JSON lines into $OUT:
#   speed.jsonl  - each network's training steps/s and inference Mpx/s: ours on wgpu (Vulkan),
#                  ours on CUDA when built in, PyTorch on CUDA (the twins in scripts/golden),
#                  same data and work as `cargo xtask bench
#                  nets-speed` (BENCHMARKS.md explains the columns);
#   mito.log     - a wider U-Net trained on EPFL slices 0-4 on the GPU for a fixed time budget,
#                  inferred on slices 20-26, thresholded at 0.5 and scored (IoU/Dice), and the
#                  same for the UNI-EM AC3 slice (top 4/5 trains, bottom 1/5 scores).
# TRAIN_SECONDS (default 150) is the training budget per dataset: the step count is the
# measured speed times it. For a dry run on a machine without a GPU: RATE=0.01 MIN_STEPS=3
# SKIP_SPEED=1.
set -u
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/gpu/setup.sh
source scripts/gpu/setup.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
python3 -c 'import torch; print("torch", torch.__version__)' >> "$OUT/machine.txt"

IMG=$G/data/epfl/image/0000.png
LBL=$G/data/epfl/label/0000.png
speed() { # device arch-json
  if [ "$1" = torch ]; then
    BENCH_DEVICE=cuda timeout 90 python3 scripts/golden/bench_nets.py "$2" "$IMG" "$LBL" 4 128 20 256
  else
    EMSTUDIO_BENCH_DEVICE=$1 timeout 120 "$SPEED" "$2" "$IMG" "$LBL" 4 128 20 256
  fi
}
# Which of our GPU backends works here (CUDA first, when built in).
OURS=wgpu
SIDES="wgpu torch"
if speed cuda '{"arch":"unet","depth":2,"base_width":4}' >> "$OUT/speed.err" 2>&1; then
  OURS=cuda
  SIDES="cuda wgpu torch"
fi
if ! speed wgpu '{"arch":"unet","depth":2,"base_width":4}' >> "$OUT/speed.err" 2>&1; then
  echo "wgpu failed too (speed.err)" | tee -a "$OUT/machine.txt"
fi
echo "training backend: $OURS" | tee -a "$OUT/machine.txt"

if [ -n "${ONLY_NETS:-}" ]; then
  # Only the speed rows of these networks (one JSON per line in ONLY_NETS), e.g. to finish a
  # run that ran out of time.
  while IFS= read -r arch; do
    [ -n "$arch" ] || continue
    for dev in $SIDES; do
      line=$(speed "$dev" "$arch" 2>>"$OUT/speed.err" | tail -1)
      echo "{\"net\":$arch,\"side\":\"$dev\",\"result\":${line:-null}}" | tee -a "$OUT/speed.jsonl"
    done
  done <<< "$ONLY_NETS"
  exit 0
fi

# Mitochondria on the GPU: a wider U-Net, the step count from the measured speed.
NET=(--arch unet --depth 4 --base-width 32)
BATCH=8; PATCH=256
rate=${RATE:-}
[ -n "$rate" ] || rate=$(EMSTUDIO_BENCH_DEVICE=$OURS timeout 120 "$SPEED" '{"arch":"unet","depth":4,"base_width":32}' "$IMG" "$LBL" $BATCH $PATCH 10 256 2>>"$OUT/speed.err" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["train_steps_per_s"])' || echo 2)
STEPS=$(python3 -c "print(max(${MIN_STEPS:-200}, int($rate * ${TRAIN_SECONDS:-150} * 0.9)))")
echo "U-Net width 32, batch $BATCH x $PATCH^2: $rate steps/s -> $STEPS steps" | tee "$OUT/mito.log"
mito() { # name train-dir train-flags test-dir eval-slices
  local name=$1 tr=$2 flags=$3 te=$4 zs=$5 w=/tmp/gpu/$1
  mkdir -p "$w"
  { local t0=$SECONDS
    "$BIN" train --image "$tr/image" --label "$tr/label" "${NET[@]}" \
      --steps "$STEPS" --batch $BATCH --patch $PATCH --validation-every 250 --device "$OURS" \
      $flags -o "$w/model.emsmodel" --quiet
    echo "$name: trained in $((SECONDS - t0)) s"
    "$BIN" infer -m "$w/model.emsmodel" -i "$te/image" -o "$w/prob.tif" --device "$OURS" --quiet
    "$BIN" label -i "$w/prob.tif" --threshold 0.5 -o "$w/mask" --quiet
    "$BIN" evaluate --gt "$te/label" --pred "$w/mask" ${zs:+--slices $zs} --json "$w/eval.json" --quiet
    echo "$name eval: $(python3 -c "import json; d=json.load(open('$w/eval.json')); s=d['report']['semantic']; print('IoU', s['jaccard'], 'Dice', s['dice'])" 2>&1)"
  } 2>&1 | tee -a "$OUT/mito.log"
}
# AC3: one 1024² slice; the top 4/5 trains, the held-out bottom 1/5 is scored (as `cargo xtask
# bench nets` does).
python3 - "$G/data/ac3" /tmp/gpu/ac3split <<'PY'
import sys, os
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
for layer in ("image", "label"):
    im = Image.open(os.path.join(src, layer, "0000.png"))
    cut = im.height - im.height // 5
    for part, box in (("top", (0, 0, im.width, cut)), ("bottom", (0, cut, im.width, im.height))):
        os.makedirs(os.path.join(dst, part, layer), exist_ok=True)
        im.crop(box).save(os.path.join(dst, part, layer, "0000.png"))
PY
mito epfl "$G/data/epfl" "--slices 0-4 --validation-slices 5" "$G/data/epfl" 20-26
mito ac3 /tmp/gpu/ac3split/top "" /tmp/gpu/ac3split/bottom ""
for n in epfl ac3; do cp /tmp/gpu/$n/eval.json "$OUT/$n-eval.json" 2>/dev/null; done

: > "$OUT/speed.jsonl"
[ "${SKIP_SPEED:-0}" = 1 ] && exit 0
for arch in '{"arch":"unet","depth":4,"base_width":8}' '{"arch":"unet","depth":4,"base_width":32}' \
  '{"arch":"resnet","blocks":9,"base_width":8}' '{"arch":"highway","units":9,"base_width":8}' \
  '{"arch":"densenet","blocks":3,"layers":4,"growth":12,"base_width":8}'; do
  for dev in $SIDES; do
    line=$(speed "$dev" "$arch" 2>>"$OUT/speed.err" | tail -1)
    echo "{\"net\":$arch,\"side\":\"$dev\",\"result\":${line:-null}}" | tee -a "$OUT/speed.jsonl"
  done
done

echo done
