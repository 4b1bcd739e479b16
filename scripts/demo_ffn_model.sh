#!/usr/bin/env bash
# Makes the flood-filling network shipped with the FlyEM demo
# (demo/flyem-medulla/models/flyem-ffn-light.ffn), the model of the Edit panel's FFN fill, with
# our own `emstudio ffn train`: the light preset on slices 0–179 of the 250³ FlyEM medulla cube
# in ../shared/data (Janelia FlyEM, CC BY), Adam at 0.001, without the optimiser state. It is
# then scored by `emstudio ffn evaluate` on slices 190–249, which training never reads.
# crates/nets/tests/demo_ffn_model.rs checks that score against the untrained network again.
# (The demo shows slices 0–49, which the model trained on: a demo of the tool, not a score.)
#
#   bash scripts/demo_ffn_model.sh [path/to/emstudio] [steps]
#   (default: the release build in the target dir, 3000 steps: about 15 min on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
emstudio="${1:-$target/release/emstudio}"
steps="${2:-3000}"
data="${EMSTUDIO_SHARED_DATA:-../shared/data}/flyem-medulla-fib"
out=demo/flyem-medulla/models/flyem-ffn-light.ffn
mkdir -p "$(dirname "$out")"
"$emstudio" ffn train --image "$data/image" --label "$data/label" --region 0:180,:,: \
  --preset light --steps "$steps" --optimizer adam --learning-rate 0.001 --seed 1 \
  --device cpu --drop-optimizer --quiet --output "$out"
"$emstudio" ffn evaluate --model "$out" --image "$data/image" --label "$data/label" \
  --region 190:250,:,: --centres 48 --device cpu --quiet
ls -l "$out"
