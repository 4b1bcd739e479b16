#!/usr/bin/env bash
# Five-fold cross-validation of mitochondria on the single AC3 slice (scripts/bench/ac3_folds.py
# cuts it into five bands; fold k scores band k with a model whose labels never held it),
# fine-tuned from the EPFL 10000-step model (.gpu/epfl10k.emsmodel, BENCHMARKS.md issue 4).
# The folds train one after another: ten at once on one H200 (session 11) made none reach 500
# steps in 420 s, where one alone runs 10 steps/s, so concurrent wgpu processes only queue.
# A training still going after FOLD_SECONDS (default 3600) is stopped and its last checkpoint
# (every 500 steps) is scored and marked with the steps it reached. Then each model predicts
# the whole slice (8 orientations) and the bands are pooled. Writes $OUT/ac3-folds.log (the
# commands and the trainers' summary lines), $OUT/ac3-folds.jsonl (scores per variant) and
# $OUT/ac3-probs-<variant>.tar (the probability maps as 8-bit PNGs).
# Without a GPU (the CPU run of BENCHMARKS.md): FOLD_DRY=1 FOLD_DEVICE=cpu FOLD_INFER_DEVICE=cpu
# BIN=<emstudio> PY=<python with numpy and Pillow> bash $0 (FOLD_STEPS=4 for a dry run).
set -u
cd "$(dirname "$0")/../.."
if [ "${FOLD_DRY:-0}" = 1 ]; then
  OUT=${OUT:-/tmp/gpu-out}
  G=.gpu
  mkdir -p "$OUT" /tmp/gpu
else
  # shellcheck source=scripts/gpu/setup.sh
  source scripts/gpu/setup.sh
fi
PY=${PY:-python3}
LIMIT=${FOLD_SECONDS:-3600}
STEPS=${FOLD_STEPS:-3000}
LOG=$OUT/ac3-folds.log
W=/tmp/ac3folds
rm -rf "$W" && mkdir -p "$W"
"$PY" scripts/bench/ac3_folds.py make "$G/data/ac3" "$W/data" | tee -a "$LOG"
# Variants: name=extra training flags, separated by ";" (FOLD_VARIANTS overrides).
declare -A VARIANTS=()
IFS=';' read -ra wanted <<< "${FOLD_VARIANTS:-ft-b4=--batch 4}"
for w in "${wanted[@]}"; do VARIANTS[${w%%=*}]=${w#*=}; done
for v in "${!VARIANTS[@]}"; do
  for k in 0 1 2 3 4; do
    # shellcheck disable=SC2086
    cmd=("$BIN" train -q --image "$W/data/fold$k/image" --label "$W/data/fold$k/label"
      --slices 0 --validation-slices 1 --ignore-label 128 --init "$G/epfl10k.emsmodel"
      --steps "$STEPS" --patch 128 --lr 0.001 --validation-every 500 --seed 1
      --checkpoint-every 500 --device "${FOLD_DEVICE:-wgpu}" ${VARIANTS[$v]} -o "$W/$v-$k.emsmodel")
    echo "# $v fold $k: ${cmd[*]}" >> "$LOG"
    timeout "$LIMIT" "${cmd[@]}" > "$W/$v-$k.log" 2>&1
    echo "exit $?" >> "$W/$v-$k.log"
  done
done
steps_of() { # the steps a model file's header records
  "$PY" -c 'import json,struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<I",b[16:20])[0]; print(json.loads(b[20:20+n])["provenance"]["steps"])' "$1"
}
for v in "${!VARIANTS[@]}"; do
  for k in 0 1 2 3 4; do
    echo "$v fold $k: $(tr '\n' ' ' < "$W/$v-$k.log") | model at step $(steps_of "$W/$v-$k.emsmodel" 2>&1)" | tee -a "$LOG"
    "$BIN" infer -q -m "$W/$v-$k.emsmodel" -i "$G/data/ac3/image" --views 8 \
      --device "${FOLD_INFER_DEVICE:-wgpu}" -o "$W/$v-$k-prob.tif" >> "$LOG" 2>&1
  done
done
for v in "${!VARIANTS[@]}"; do
  probs=()
  for k in 0 1 2 3 4; do probs+=("$W/$v-$k-prob.tif"); done
  echo "{\"variant\":\"$v\",\"args\":\"${VARIANTS[$v]} --steps $STEPS\",\"scores\":$("$PY" scripts/bench/ac3_folds.py score "$G/data/ac3" "${probs[@]}")}" | tee -a "$OUT/ac3-folds.jsonl"
  "$PY" - "${probs[@]}" <<'PY'
import sys
import numpy as np
from PIL import Image
for p in sys.argv[1:]:
    a = np.asarray(Image.open(p), dtype=np.float32)
    Image.fromarray(np.floor(a * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(p[:-4] + ".png")
PY
  tar -C "$W" -cf "$OUT/ac3-probs-$v.tar" $(cd "$W" && ls "$v"-*-prob.png)
done
