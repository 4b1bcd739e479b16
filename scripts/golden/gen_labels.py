#!/usr/bin/env python3
"""Writes the golden fixtures of the `labels` area to crates/core/tests/golden/labels/.

Usage: python3 scripts/golden/gen_labels.py [/work/shared/data]

References (versions pinned in requirements.txt):
- connected-components-3d (cc3d): multi-label connected components (6/18/26, 2D 4/8) and
  `cc3d.dust` (size filter per connected piece);
- scikit-image: `skimage.measure.label` (binary masks, connectivity 1/2/3),
  `skimage.segmentation.relabel_sequential`, `skimage.morphology.remove_small_objects`;
- numpy: `np.unique(..., return_counts=True)` for object sizes.

File names carry the parameters; tests/golden_labels.rs parses them:
- in__<case>.npy                      input volume (uint8/uint16/uint32), 3D or 2D
- cc__<case>__c<6|18|26|4|8>.npy        cc3d.connected_components(input, connectivity=c)
- sk__<case>__c<1|2|3>.npy              skimage.measure.label(input > 0, connectivity=c)
- relabel__<case>.npy, relabel_in__<case>.npy, relabel_out__<case>.npy
                                       relabel_sequential output and forward map (in -> out)
- sizes_ids__<case>.npy, sizes_counts__<case>.npy   np.unique without 0
- dust__<case>__t<threshold>__c<c>.npy  cc3d.dust(input, threshold, connectivity=c)
- rso__<case>__m<min_size>.npy          remove_small_objects(input, max_size=min_size - 1)
- real__flyem_z32__c<c>.npy             [N, checksum] of cc3d on the first 32 slices of the whole
                                       flyem-medulla-fib label volume (too big to store); checksum
                                       = sum(label[i] * (i % 7919)) over the flat (z, y, x) index i
Label outputs are stored in the smallest of uint8/uint16/uint32 that holds them (smaller fixtures).
"""

import glob
import os
import sys

import cc3d
import numpy as np
import scipy.ndimage as ndi
import skimage.measure
import skimage.morphology
import skimage.segmentation
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "core", "tests", "golden", "labels")


def save(name, array):
    array = np.ascontiguousarray(array)
    np.save(os.path.join(OUT, name + ".npy"), array)


def compact(labels):
    """Label output in the smallest of uint8/uint16/uint32 that holds it."""
    top = labels.max(initial=0)
    return labels.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)


def load_stack(folder, z, y, x):
    files = sorted(glob.glob(os.path.join(folder, "*.png")))[z]
    return np.stack([np.array(Image.open(f))[y, x] for f in files])


def multilabel_case(case, volume, conns):
    save(f"in__{case}", volume)
    for c in conns:
        save(f"cc__{case}__c{c}", compact(cc3d.connected_components(volume, connectivity=c)))


def binary_case(case, volume, conns):
    save(f"in__{case}", volume)
    for c in conns:
        expected = skimage.measure.label(volume > 0, connectivity=c)
        # cc3d agrees on binary input; checked here so a disagreement is noticed.
        cc = {1: 6, 2: 18, 3: 26} if volume.ndim == 3 else {1: 4, 2: 8}
        other = cc3d.connected_components((volume > 0).astype(np.uint8), connectivity=cc[c])
        assert np.array_equal(expected, other), (case, c)
        save(f"sk__{case}__c{c}", compact(expected))


def relabel_case(case, volume):
    out, fw, _inv = skimage.segmentation.relabel_sequential(volume)
    assert out.dtype == volume.dtype
    save(f"relabel__{case}", out)
    keep = fw.in_values != 0
    save(f"relabel_in__{case}", fw.in_values[keep].astype(volume.dtype))
    save(f"relabel_out__{case}", fw.out_values[keep].astype(volume.dtype))
    ids, counts = np.unique(volume, return_counts=True)
    keep = ids != 0
    save(f"sizes_ids__{case}", ids[keep].astype(volume.dtype))
    save(f"sizes_counts__{case}", counts[keep].astype(np.uint64))


def dust_case(case, volume, thresholds, conns):
    for t in thresholds:
        for c in conns:
            save(f"dust__{case}__t{t}__c{c}", cc3d.dust(volume, threshold=t, connectivity=c, in_place=False))


def rso_case(case, volume, min_sizes):
    for m in min_sizes:
        save(f"rso__{case}__m{m}", skimage.morphology.remove_small_objects(volume, max_size=m - 1))


def blobs(rng, shape, levels, sigma):
    """Smooth random labels: Gaussian-filtered noise cut into `levels` bands (band 0 = background)."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    edges = np.quantile(noise, np.linspace(0, 1, levels + 1)[1:-1])
    return np.digitize(noise, edges)


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.npy")):
        os.remove(f)
    rng = np.random.default_rng(20240611)

    # Random multi-label noise: many tiny components, every neighbour kind matters.
    multilabel_case("rand_u8", rng.integers(0, 4, (10, 18, 23), dtype=np.uint8), (6, 18, 26))
    # Wide rows (full 64-voxel blocks) of smooth labels.
    multilabel_case("blobs_u16", blobs(rng, (6, 16, 130), 7, 2.0).astype(np.uint16) * 1000, (6, 18, 26))
    # Large 32-bit ids.
    ids = np.array([0, 7, 4_000_000_000, 123_456_789], dtype=np.uint32)
    multilabel_case("rand_u32", ids[rng.integers(0, 4, (8, 16, 20))], (6, 18, 26))
    # Real dense labels: a flyem-medulla-fib crop.
    flyem = load_stack(os.path.join(data, "flyem-medulla-fib", "label"), slice(100, 112), slice(100, 140), slice(80, 120))
    assert flyem.dtype == np.uint16
    multilabel_case("flyem_u16", flyem, (6, 18, 26))

    # Binary: random and real (isbi2012 cell interiors, 255 = interior).
    binary_case("randbin_u8", (rng.random((10, 18, 23)) < 0.3).astype(np.uint8) * 3, (1, 2, 3))
    isbi = load_stack(os.path.join(data, "isbi2012", "label"), slice(0, 6), slice(256, 320), slice(192, 256))
    assert isbi.dtype == np.uint8
    binary_case("isbi_u8", isbi, (1, 2, 3))
    # The mito masks: sparse small objects.
    mito = load_stack(os.path.join(data, "isbi2012", "label_mito"), slice(0, 6), slice(224, 288), slice(0, 64))
    binary_case("mito_u8", mito, (1, 2, 3))

    # 2D.
    binary_case("isbi2d_u8", isbi[0], (1, 2))
    rand2d = rng.integers(0, 3, (30, 41), dtype=np.uint8)
    multilabel_case("rand2d_u8", rand2d, (4, 8))

    # Relabelling and sizes.
    gappy = np.array([0, 5, 9, 70_000, 3_000_000_000], dtype=np.uint32)[rng.integers(0, 5, (6, 10, 12))]
    save("in__gappy_u32", gappy)
    relabel_case("gappy_u32", gappy)
    relabel_case("flyem_u16", flyem)
    relabel_case("rand_u8", np.load(os.path.join(OUT, "in__rand_u8.npy")))

    # Size filters on labelled input.
    dust_case("flyem_u16", flyem, (50, 500), (6, 26))
    dust_case("rand_u8", np.load(os.path.join(OUT, "in__rand_u8.npy")), (3,), (6, 18, 26))
    rso_case("flyem_u16", flyem, (200, 2000))
    rso_case("gappy_u32", gappy, (100,))

    # Whole-slice real data, checked by count and checksum (the test reads the PNGs itself).
    full = load_stack(os.path.join(data, "flyem-medulla-fib", "label"), slice(0, 32), slice(None), slice(None))
    weights = (np.arange(full.size, dtype=np.uint64) % 7919).reshape(full.shape)
    for c in (6, 18, 26):
        out, n = cc3d.connected_components(full, connectivity=c, return_N=True)
        checksum = int(np.sum(out.astype(np.uint64) * weights, dtype=np.uint64))
        save(f"real__flyem_z32__c{c}", np.array([n, checksum], dtype=np.uint64))

    total = sum(os.path.getsize(f) for f in glob.glob(os.path.join(OUT, "*.npy")))
    print(f"wrote {len(glob.glob(os.path.join(OUT, '*.npy')))} files, {total / 1e6:.2f} MB to {OUT}")


if __name__ == "__main__":
    main()
