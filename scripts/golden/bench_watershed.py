#!/usr/bin/env python3
"""Reference timings for crates/core/examples/bench_watershed.rs (same inputs, same kernel names).

Usage: python3 scripts/golden/bench_watershed.py /work/shared/data [--runs N] [--compare DIR]

Prints one JSON line per kernel: {"kernel": ..., "impl": "<reference>", "ms": <median wall>,
"cpu_ms": <median CPU time>}.
References: scipy.ndimage.distance_transform_edt (edt_3d, edt_3d_aniso), the `edt` package
(edt_labels_3d; also edt_3d for information, impl "edt"), skimage.segmentation.watershed
(watershed_3d), skimage.feature.peak_local_max (peak_local_max_3d) and the scikit-image
pipeline of gen_watershed.py (distance_watershed_3d). All single-threaded.

--compare DIR: compare with the outputs the Rust benchmark wrote with `--dump DIR`.
"""

import glob
import json
import os
import sys
import time

import edt
import numpy as np
import scipy.ndimage as ndi
from PIL import Image
from skimage.feature import peak_local_max
from skimage.segmentation import watershed


def load(folder):
    return np.stack([np.array(Image.open(f)) for f in sorted(glob.glob(os.path.join(folder, "*.png")))])


def median_ms(runs, f):
    """Median wall and CPU time (ms); CPU time is steadier on a shared machine."""
    wall, cpu, out = [], [], None
    for _ in range(runs):
        c = time.process_time()
        t = time.perf_counter()
        out = f()
        wall.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return (float(np.median(wall)), float(np.median(cpu))), out


def report(kernel, impl, t):
    ms, cpu = t
    print(json.dumps({"kernel": kernel, "impl": impl, "ms": round(ms, 1), "cpu_ms": round(cpu, 1)}), flush=True)


def distance_watershed(mask, sampling, min_distance, connectivity):
    mask = mask.astype(bool)
    dist = ndi.distance_transform_edt(mask, sampling=sampling).astype(np.float32)
    coords = peak_local_max(dist, min_distance=min_distance, labels=mask, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(coords.T)] = np.arange(1, len(coords) + 1)
    return watershed(-dist, markers, connectivity=connectivity, mask=mask)


def main():
    args = sys.argv[1:]
    data = args[0] if args and not args[0].startswith("--") else "/work/shared/data"
    runs = int(args[args.index("--runs") + 1]) if "--runs" in args else 3
    compare = args[args.index("--compare") + 1] if "--compare" in args else None

    fly = os.path.join(data, "flyem-medulla-fib")
    lab = load(os.path.join(fly, "label")).astype(np.uint32)
    img = load(os.path.join(fly, "image"))
    b = np.zeros(lab.shape, bool)
    b[:, :, :-1] |= lab[:, :, :-1] != lab[:, :, 1:]
    b[:, :-1, :] |= lab[:, :-1, :] != lab[:, 1:, :]
    b[:-1, :, :] |= lab[:-1, :, :] != lab[1:, :, :]
    fg = (lab != 0) & ~b

    ms, dist = median_ms(runs, lambda: ndi.distance_transform_edt(fg, sampling=(10, 10, 10)))
    report("edt_3d", "scipy", ms)
    ms, _ = median_ms(runs, lambda: edt.edt(fg, anisotropy=(10, 10, 10), black_border=False, parallel=1))
    report("edt_3d", "edt", ms)
    ms, _ = median_ms(runs, lambda: ndi.distance_transform_edt(fg, sampling=(40, 10, 10)))
    report("edt_3d_aniso", "scipy", ms)
    ms, dist_labels = median_ms(
        runs, lambda: edt.edt(lab, anisotropy=(10, 10, 10), black_border=False, parallel=1)
    )
    report("edt_labels_3d", "edt", ms)

    markers = np.where(ndi.distance_transform_edt(fg) >= 5, lab, 0).astype(np.int32)
    elevation = (255 - img.astype(np.float32)).astype(np.float32)
    ms, ws = median_ms(runs, lambda: watershed(elevation, markers, connectivity=1))
    report("watershed_3d", "skimage", ms)

    dist32 = dist.astype(np.float32)
    ms, peaks = median_ms(
        runs, lambda: peak_local_max(dist32, min_distance=5, labels=fg, exclude_border=False)
    )
    report("peak_local_max_3d", "skimage", ms)

    ms, dws = median_ms(runs, lambda: distance_watershed(fg, (10, 10, 10), 5, 1))
    report("distance_watershed_3d", "skimage", ms)

    if compare:
        def cmp(name, want, exact=True):
            got = np.load(os.path.join(compare, f"{name}.npy"))
            if exact:
                diff = int(np.sum(got.astype(np.int64) != want.astype(np.int64))) if got.shape == want.shape else -1
                print(f"# {name}: {diff} differing entries (shape {got.shape} vs {want.shape})", file=sys.stderr)
            else:
                rel = np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-30))
                print(f"# {name}: max rel err {rel:.2e}, bit-exact {np.array_equal(got, want)}", file=sys.stderr)

        cmp("edt_3d", dist.astype(np.float32), exact=False)
        cmp("edt_labels_3d", dist_labels, exact=False)
        cmp("watershed_3d", ws)
        cmp("peak_local_max_3d", peaks)
        cmp("distance_watershed_3d", dws)


if __name__ == "__main__":
    main()
