#!/usr/bin/env python3
"""Times the reference implementations of the labelling kernels.

Usage: python3 scripts/golden/bench_labels.py /work/shared/data

Prints one JSON line per kernel and reference, with the same kernel names as
`cargo run --release -p emstudio-core --example bench_labels -- /work/shared/data`:
{"kernel": "<name>", "impl": "<reference>", "ms": <median of 7 runs after one warm-up>}.
"""

import glob
import json
import os
import sys
import time

import cc3d
import numpy as np
import skimage.measure
import skimage.morphology
import skimage.segmentation
from PIL import Image

REPEATS = 7


def load(folder):
    files = sorted(glob.glob(os.path.join(folder, "*.png")))
    return np.stack([np.array(Image.open(f)) for f in files])


def timed(fn):
    fn()
    ms = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1e3)
    return sorted(ms)[REPEATS // 2]


def report(kernel, impl, fn):
    print(json.dumps({"kernel": kernel, "impl": impl, "ms": round(timed(fn), 3)}), flush=True)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
    flyem = load(os.path.join(root, "flyem-medulla-fib/label"))
    assert flyem.dtype == np.uint16 and flyem.shape == (250, 250, 250)

    for c in (26, 18, 6):
        report(f"cc3d_multilabel_{c}", "cc3d", lambda: cc3d.connected_components(flyem, connectivity=c))
    fg = (flyem > 0).astype(np.uint8)
    for c, sk in ((26, 3), (6, 1)):
        report(f"cc3d_binary_{c}", "cc3d", lambda: cc3d.connected_components(fg, connectivity=c, binary_image=True))
        report(f"cc3d_binary_{c}", "skimage", lambda: skimage.measure.label(fg, connectivity=sk))

    isbi = load(os.path.join(root, "isbi2012/label"))
    assert isbi.dtype == np.uint8
    for c, sk in ((26, 3), (6, 1)):
        report(f"cc3d_binary_{c}_isbi", "cc3d", lambda: cc3d.connected_components(isbi, connectivity=c, binary_image=True))
        report(f"cc3d_binary_{c}_isbi", "skimage", lambda: skimage.measure.label(isbi > 0, connectivity=sk))
    report(
        "cc2d_binary_4_isbi_per_slice",
        "cc3d",
        lambda: [cc3d.connected_components(s, connectivity=4, binary_image=True) for s in isbi],
    )
    report(
        "cc2d_binary_4_isbi_per_slice",
        "skimage",
        lambda: [skimage.measure.label(s > 0, connectivity=1) for s in isbi],
    )

    report("relabel_sequential", "skimage", lambda: skimage.segmentation.relabel_sequential(flyem))
    report("label_sizes", "numpy", lambda: np.unique(flyem, return_counts=True))
    report("dust_26", "cc3d", lambda: cc3d.dust(flyem, threshold=1000, connectivity=26, in_place=False))
    report(
        "remove_small_objects_by_id",
        "skimage",
        lambda: skimage.morphology.remove_small_objects(flyem, max_size=999),
    )
    # link_slices has no reference implementation.


if __name__ == "__main__":
    main()
