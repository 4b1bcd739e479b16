#!/usr/bin/env python3
"""Writes the golden fixtures of the FFN training data to crates/core/tests/golden/ffn/.

Usage: python3 scripts/golden/gen_ffn.py [/work/shared/data]

Reference: google/ffn (github.com/google/ffn, not on PyPI), `compute_partitions.py` and
`build_coordinates.py`, re-typed here with numpy (pinned in requirements.txt) line for line:
- clear_dust: IDs with fewer than `min_size` voxels in the whole volume become 0;
- the fraction of voxels of the same ID in the (2r+1)^3 box around each voxel, from a
  summed-volume table exactly as ffn.utils.... `_summed_volume_table` / `_query_summed_volume`
  compute it (int box sums, float64 division);
- partition value 1 + (index of the first threshold the fraction is below), len(thresholds) + 1
  at or above the last one, 0 for background, 255 within `lom_radius` of the border;
- build_coordinates: the partitions cropped by `margin` (z, y, x); per value other than 255 its
  voxel count (a class each, background included); every class is resampled to the largest count.

File names carry the parameters; tests/golden_ffn.rs parses them:
- in__<case>.npy                                     label volume (uint16)
- part__<case>__r<z>_<y>_<x>__m<min_size>.npy        partition volume (uint8), default thresholds
- count__<case>__r<z>_<y>_<x>__m<min_size>__g<z>_<y>_<x>.npy
      [[value, voxels], ...] of build_coordinates' classes for margin g (int64), ascending value;
      every class appears max(voxels) times in the coordinates
"""

import glob
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "core", "tests", "golden", "ffn")
THRESHOLDS = [0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


def clear_dust(seg, min_size):
    ids, sizes = np.unique(seg, return_counts=True)
    small = ids[sizes < min_size]
    seg[np.isin(seg, small)] = 0
    return seg


def summed_volume_table(mask):
    svt = mask.astype(np.int32)
    for axis in range(3):
        svt = svt.cumsum(axis=axis, dtype=np.int32)
    return np.pad(svt, [(1, 0)] * 3, mode="constant")


def query_summed_volume(svt, diam):
    d0, d1, d2 = diam
    return (svt[d0:, d1:, d2:] - svt[d0:, d1:, :-d2] - svt[d0:, :-d1, d2:] - svt[:-d0, d1:, d2:]
            + svt[:-d0, :-d1, d2:] + svt[:-d0, d1:, :-d2] + svt[d0:, :-d1, :-d2]
            - svt[:-d0, :-d1, :-d2])


def compute_partitions(seg, thresholds, lom_radius_zyx, min_size):
    seg = clear_dust(seg.copy(), min_size)
    r = np.array(lom_radius_zyx)
    diam = 2 * r + 1
    valid_sel = tuple(slice(x, -x) if x > 0 else slice(None) for x in r)
    output = np.zeros(np.array(seg.shape) - 2 * r, dtype=np.uint8)
    for l in np.unique(seg):
        if l == 0:
            continue
        object_mask = seg == l
        svt = summed_volume_table(object_mask)
        active_fraction = query_summed_volume(svt, diam) / np.prod(diam)
        object_mask = object_mask[valid_sel]
        for i, th in enumerate(thresholds):
            output[object_mask & (active_fraction < th) & (output == 0)] = i + 1
        output[object_mask & (active_fraction >= thresholds[-1]) & (output == 0)] = len(thresholds) + 1
    full = np.full(seg.shape, 255, dtype=np.uint8)
    full[valid_sel] = output
    return full


def class_counts(partitions, margin_zyx):
    mz, my, mx = margin_zyx
    cropped = partitions[mz:-mz, my:-my, mx:-mx]
    values, counts = np.unique(cropped, return_counts=True)
    keep = values != 255
    return np.stack([values[keep].astype(np.int64), counts[keep].astype(np.int64)], axis=1)


def case(name, seg, radii, min_sizes, margins):
    save(f"in__{name}", seg.astype(np.uint16))
    for r in radii:
        for m in min_sizes:
            part = compute_partitions(seg, THRESHOLDS, r, m)
            tag = f"{name}__r{r[0]}_{r[1]}_{r[2]}__m{m}"
            save(f"part__{tag}", part)
            for g in margins:
                save(f"count__{tag}__g{g[0]}_{g[1]}_{g[2]}", class_counts(part, g))


def blobs(shape, n, seed):
    """Touching objects of very different sizes: nearest of n random centres, some cut away."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, size=(n, 3)) * np.array(shape)
    z, y, x = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    grid = np.stack([z, y, x], axis=-1).astype(np.float64)
    d = ((grid[..., None, :] - centres) ** 2 * np.array([4.0, 1.0, 1.0])).sum(-1)
    seg = (d.argmin(-1) + 1).astype(np.uint16)
    seg[rng.uniform(size=shape) < 0.05] = 0
    seg[d.min(-1) > 60] = 0
    return seg


def main():
    os.makedirs(OUT, exist_ok=True)
    case("blobs", blobs((14, 30, 26), 9, 1), [(1, 2, 3), (3, 3, 3)], [1, 200], [(2, 3, 4)])
    data = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
    files = sorted(glob.glob(os.path.join(data, "flyem-medulla-fib", "label", "*.png")))[:24]
    if files:
        crop = np.stack([np.array(Image.open(f))[40:104, 60:140] for f in files]).astype(np.uint16)
        case("flyem", crop, [(4, 6, 6)], [1000], [(5, 7, 7)])
    else:
        print("no flyem-medulla-fib labels found: the flyem fixtures were not written")


if __name__ == "__main__":
    main()
