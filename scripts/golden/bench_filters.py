#!/usr/bin/env python3
"""Times the reference implementations of the filter kernels benchmarked by
crates/core/examples/bench_filters.rs, on the same inputs and with the same kernel names.

Prints one JSON line per kernel: {"kernel": ..., "impl": ..., "ms": <median>}.
Usage: python3 scripts/golden/bench_filters.py /work/shared/data [kernel-substring]
"""

import glob
import json
import os
import sys
import time

import cv2
import numpy as np
import scipy.ndimage as ndi
from skimage import exposure, feature, filters, io

cv2.setNumThreads(1)  # emstudio is single-threaded (wasm); compare like with like


def load(folder):
    files = sorted(glob.glob(os.path.join(folder, "*.png")))
    return np.stack([io.imread(f) for f in files]).astype(np.uint8)


def timed(repeats, fn):
    fn()
    ms = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ms))


def ball(r):
    z, y, x = np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1]
    return z * z + y * y + x * x <= r * r


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
    only = sys.argv[2] if len(sys.argv) > 2 else None
    flyem = load(os.path.join(data, "flyem-medulla-fib", "image"))
    isbi = load(os.path.join(data, "isbi2012", "image"))
    flyem_f = flyem.astype(np.float32)
    isbi_f = isbi.astype(np.float32)
    flyem_bin = flyem > 120

    def per_slice(fn, vol):
        return lambda: np.stack([fn(s) for s in vol])

    def norm():
        lo, hi = np.percentile(flyem_f, (1, 99))
        return exposure.rescale_intensity(flyem_f, in_range=(lo, hi), out_range=(0.0, 1.0))

    def otsu():
        return flyem_f > filters.threshold_otsu(flyem)

    kernels = [
        ("gaussian_3d_s2", "scipy.ndimage", 5, lambda: ndi.gaussian_filter(flyem_f, 2.0, mode="reflect")),
        ("gaussian_3d_s1_aniso", "scipy.ndimage", 5, lambda: ndi.gaussian_filter(flyem_f, (0.5, 1, 1), mode="reflect")),
        ("gaussian_2d_isbi", "scipy.ndimage", 5, lambda: ndi.gaussian_filter(isbi_f, (0, 2, 2), mode="reflect")),
        ("median_3d_3", "scipy.ndimage", 3, lambda: ndi.median_filter(flyem, 3, mode="reflect")),
        ("median_3d_3_f32", "scipy.ndimage", 3, lambda: ndi.median_filter(flyem_f, 3, mode="reflect")),
        ("median_2d_isbi_5", "scipy.ndimage", 3, lambda: ndi.median_filter(isbi_f, (1, 5, 5), mode="reflect")),
        ("bilateral_2d_isbi", "opencv", 3, per_slice(lambda s: cv2.bilateralFilter(s, 0, 30.0, 3.0), isbi_f)),
        (
            "clahe_2d_isbi",
            "skimage",
            3,
            per_slice(lambda s: exposure.equalize_adapthist(s, kernel_size=127, clip_limit=1.5 / 256, nbins=256), isbi),
        ),
        ("unsharp_3d", "skimage", 5, lambda: filters.unsharp_mask(flyem_f, radius=2.0, amount=1.0, preserve_range=True)),
        ("canny_2d_isbi", "skimage", 3, per_slice(lambda s: feature.canny(s.astype(np.float64), 2.0, 10.0, 30.0), isbi)),
        ("normalize_pct_3d", "skimage", 5, norm),
        ("otsu_3d", "skimage", 5, otsu),
        ("grey_erode_3d_ball1", "scipy.ndimage", 5, lambda: ndi.grey_erosion(flyem_f, footprint=ball(1))),
        ("grey_dilate_3d_ball2", "scipy.ndimage", 5, lambda: ndi.grey_dilation(flyem_f, footprint=ball(2))),
        ("grey_open_3d_box1", "scipy.ndimage", 5, lambda: ndi.grey_opening(flyem_f, size=(3, 3, 3))),
        ("binary_open_3d_ball1", "scipy.ndimage", 5, lambda: ndi.binary_opening(flyem_bin, structure=ball(1))),
        ("binary_erode_3d_box1", "scipy.ndimage", 5, lambda: ndi.binary_erosion(flyem_bin, structure=np.ones((3, 3, 3), bool))),
    ]
    for name, impl, repeats, fn in kernels:
        if only and only not in name:
            continue
        print(json.dumps({"kernel": name, "impl": impl, "ms": round(timed(repeats, fn), 3)}), flush=True)


if __name__ == "__main__":
    main()
