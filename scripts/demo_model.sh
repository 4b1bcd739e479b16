#!/usr/bin/env bash
# Makes the mitochondria model shipped with the AC3 demo (demo/uniem-ac3-mito/models/), with
# our own `emstudio train` on the demo slice: it trains on rows 0–819 (a single training
# slice's bottom fifth is held out for validation), and `emstudio card` scores it on the
# held-out rows 820–1023 beside the best plain threshold and writes that into its card.
# crates/nets/tests/demo_model.rs checks the card against a fresh measurement.
#
#   bash scripts/demo_model.sh [path/to/emstudio]   (default: the debug build in the target dir)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
emstudio="${1:-$target/debug/emstudio}"
demo=demo/uniem-ac3-mito
out="$demo/models/ac3-mito-unet.emsmodel"
mkdir -p "$demo/models"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$emstudio" train --image "$demo/image" --label "$demo/label" \
  --arch unet --depth 3 --base-width 8 --steps 3000 --batch 4 --patch 128 --lr 0.002 \
  --seed 1 --device cpu --quiet --output "$tmp/model.emsmodel"
"$emstudio" card --model "$tmp/model.emsmodel" --image "$demo/image" --label "$demo/label" \
  --data-name "the AC3 demo" --drop-optimizer --output "$out" \
  --text "Mitochondria in serial-section EM (foreground = mitochondrion). U-Net, 3 levels, base width 8, trained by emstudio train for 3000 steps (batch 4, 128² patches, seed 1) on rows 0–819 of the AC3 demo slice: Kasthuri et al. 2015 AC3 / SNEMI3D ssEM with the UNI-EM mitochondria mask, ODC-By 1.0. One slice of one dataset: expect it to need fine-tuning on other data."
ls -l "$out"
