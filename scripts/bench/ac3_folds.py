#!/usr/bin/env python3
"""Five-fold cross-validation over the single AC3 slice (../shared/data/uniem-ac3-mito).

AC3 has one annotated 1024² slice, so "held-out slices" cannot be had; held-out bands can. The
slice is cut into five horizontal bands. Fold k scores band k, validates on band k+1 (mod 5)
and trains on the other three, through the trainer's ignore label: every fold is a two-slice
stack of the same image, whose label slice 0 marks bands k and k+1 as "not annotated" (the
training slice) and whose label slice 1 marks everything but band k+1 so (the validation
slice). The image itself is whole in both, as it is at inference: only labels are held out.

    ac3_folds.py make  DATA OUTDIR          writes OUTDIR/fold{k}/{image,label}/000{0,1}.png
    ac3_folds.py score DATA PROB0 … PROB4   pools band k of PROBk (probability TIFFs of the
                                            whole slice) and prints IoU/Dice at 0.5 per fold
                                            and pooled, as JSON

Needs numpy and Pillow only (both on the GPU machine and in scripts/golden's venv).
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FOLDS = 5
IGNORE = 128  # `emstudio train --ignore-label 128`; the masks hold 0 and 255 only


def bands(height: int) -> list[tuple[int, int]]:
    """Row ranges of the five bands (the last ones one row longer where 1024/5 rounds)."""
    edges = [round(k * height / FOLDS) for k in range(FOLDS + 1)]
    return list(zip(edges[:-1], edges[1:]))


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def make(data: Path, out: Path) -> None:
    image = Image.open(data / "image" / "0000.png")
    label = read(data / "label" / "0000.png")
    if set(np.unique(label)) - {0, 255}:
        sys.exit(f"{data / 'label' / '0000.png'}: expected a 0/255 mask")
    rows = bands(label.shape[0])
    for k in range(FOLDS):
        (test0, test1), (val0, val1) = rows[k], rows[(k + 1) % FOLDS]
        train = label.copy()
        train[test0:test1] = IGNORE
        train[val0:val1] = IGNORE
        validation = np.full_like(label, IGNORE)
        validation[val0:val1] = label[val0:val1]
        fold = out / f"fold{k}"
        for part in ("image", "label"):
            (fold / part).mkdir(parents=True, exist_ok=True)
        for z, mask in enumerate((train, validation)):
            image.save(fold / "image" / f"{z:04}.png")
            Image.fromarray(mask).save(fold / "label" / f"{z:04}.png")
        print(f"fold{k}: score rows {test0}-{test1}, validate rows {val0}-{val1}")


def score(data: Path, probs: list[Path]) -> None:
    if len(probs) != FOLDS:
        sys.exit(f"score needs {FOLDS} probability maps, got {len(probs)}")
    truth = read(data / "label" / "0000.png") > 0
    pooled = np.zeros_like(truth)
    result = {"folds": []}
    for k, ((r0, r1), path) in enumerate(zip(bands(truth.shape[0]), probs)):
        p = np.asarray(Image.open(path), dtype=np.float32)
        if p.shape != truth.shape:
            sys.exit(f"{path}: {p.shape} is not the slice's {truth.shape}")
        pooled[r0:r1] = p[r0:r1] >= 0.5
        result["folds"].append({"fold": k, "rows": [r0, r1], **overlap(pooled[r0:r1], truth[r0:r1])})
    result["pooled"] = overlap(pooled, truth)
    print(json.dumps(result))


def overlap(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    return {
        "iou": tp / max(tp + fp + fn, 1),
        "dice": 2 * tp / max(2 * tp + fp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
    }


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "make":
        make(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "score":
        score(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])
    else:
        sys.exit(__doc__)
