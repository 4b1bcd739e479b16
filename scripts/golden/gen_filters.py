#!/usr/bin/env python3
"""Golden fixtures for emstudio_core::filters (crates/core/tests/golden_filters.rs).

Writes small .npy inputs and expected outputs plus cases.json (one entry per case: input,
FilterSpec JSON, expected output, how to compare) to crates/core/tests/golden/filters/.

References (versions pinned in scripts/golden/requirements.txt):
  scipy.ndimage          gaussian_filter, median_filter, binary_/grey_ morphology
  scikit-image           equalize_adapthist, rescale_intensity, unsharp_mask, canny,
                         threshold_otsu, util.invert
  opencv-python-headless bilateralFilter (float32 path)

Usage: python3 scripts/golden/gen_filters.py [/work/shared/data]
"""

import glob
import json
import os
import sys

import cv2
import numpy as np
import scipy.ndimage as ndi
import skimage
from skimage import exposure, feature, filters, io, util

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "core", "tests", "golden", "filters")
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(ROOT), "shared", "data")

cases = []
written = set()


def save(name, arr):
    """Stores an array once (u8 / f32 only) and returns its file name."""
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.uint8, np.float32), (name, arr.dtype)
    fname = name + ".npy"
    if fname not in written:
        np.save(os.path.join(OUT, fname), arr)
        written.add(fname)
    return fname


def case(name, inp, spec, expected, compare, **extra):
    """inp: (file, dtype) from save; expected: array (u8 or f32, same shape as input)."""
    exp_name = save("exp_" + name, expected)
    c = {
        "name": name,
        "input": inp[0],
        "input_dtype": inp[1],
        "spec": spec,
        "expected": exp_name,
        "expected_dtype": str(expected.dtype),
        "compare": compare,
    }
    c.update(extra)
    cases.append(c)


def inp(name, arr):
    return (save("in_" + name, arr), str(arr.dtype))


def stack(dataset, z0, z1, y0, y1, x0, x1):
    files = sorted(glob.glob(os.path.join(DATA, dataset, "image", "*.png")))[z0:z1]
    return np.stack([io.imread(f)[y0:y1, x0:x1] for f in files]).astype(np.uint8)


def per_slice(fn, vol):
    return np.stack([fn(s) for s in vol])


def as_mask(b):
    return b.astype(np.uint8)


def footprint(shape, radius):
    """The footprint emstudio builds (integer ellipsoid for 'ball')."""
    rz, ry, rx = radius
    zz, yy, xx = np.meshgrid(
        np.arange(-rz, rz + 1), np.arange(-ry, ry + 1), np.arange(-rx, rx + 1), indexing="ij"
    )
    if shape == "box":
        return np.ones(zz.shape, bool)
    if shape == "cross":
        return ((zz != 0).astype(int) + (yy != 0) + (xx != 0)) <= 1
    prod = 1
    for r in radius:
        if r > 0:
            prod *= r * r
    lhs = np.zeros(zz.shape, np.int64)
    for d, r in ((zz, rz), (yy, ry), (xx, rx)):
        if r > 0:
            lhs += d.astype(np.int64) ** 2 * (prod // (r * r))
    return lhs <= prod


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.npy")):
        os.remove(f)
    rng = np.random.default_rng(20260501)

    rand_f = (rng.random((7, 19, 23)) * 255).astype(np.float32)
    rand_u8 = rng.integers(0, 256, (6, 17, 21)).astype(np.uint8)
    rand01 = rng.random((3, 24, 26)).astype(np.float32)
    tiny = (rng.random((3, 4, 5)) * 100).astype(np.float32)
    mask = (rng.random((10, 16, 16)) < 0.6).astype(np.uint8)
    flyem = stack("flyem-medulla-fib", 100, 108, 90, 130, 100, 140)  # 8 x 40 x 40
    isbi = stack("isbi2012", 0, 1, 200, 264, 150, 214)  # 1 x 64 x 64
    isbi2 = stack("isbi2012", 3, 5, 300, 348, 10, 58)  # 2 x 48 x 48
    uniem = stack("uniem-ac3-mito", 0, 1, 400, 528, 500, 628)  # 1 x 128 x 128

    i_rand_f = inp("rand_f32", rand_f)
    i_rand_u8 = inp("rand_u8", rand_u8)
    i_rand01 = inp("rand01", rand01)
    i_tiny = inp("tiny", tiny)
    i_mask = inp("mask", mask)
    i_flyem = inp("flyem", flyem)
    i_isbi = inp("isbi", isbi)
    i_isbi2 = inp("isbi2", isbi2)
    i_uniem = inp("uniem", uniem)
    flyem_f = flyem.astype(np.float32)

    # --- Gaussian: scipy, float32 in/out. Tolerance: we accumulate in f32, scipy in f64.
    close = dict(rtol=1e-5, atol=1e-5)
    for name, src, x, sigma in [
        ("gaussian_rand_3d", i_rand_f, rand_f, [1.0, 2.0, 1.5]),
        ("gaussian_rand_2d", i_rand_f, rand_f, [2.0, 3.0]),
        ("gaussian_flyem_3d", i_flyem, flyem_f, [2.0, 2.0, 2.0]),
        ("gaussian_tiny_wide", i_tiny, tiny, [2.0, 2.0, 2.0]),
        ("gaussian_aniso_zero", i_rand_f, rand_f, [0.0, 0.5, 3.0]),
        ("gaussian_small_sigma", i_rand_f, rand_f, [0.3, 0.7, 0.1]),
    ]:
        s3 = sigma if len(sigma) == 3 else [0.0] + sigma
        exp = ndi.gaussian_filter(x.astype(np.float32), s3, mode="reflect", truncate=4.0)
        case(name, src, {"filter": "gaussian", "sigma": sigma}, exp.astype(np.float32), "close", **close)

    # --- Median: scipy, exact.
    for name, src, x, size in [
        ("median_flyem_3d", i_flyem, flyem, [3, 3, 3]),
        ("median_flyem_2d", i_flyem, flyem, [5, 5]),
        ("median_rand_even", i_rand_u8, rand_u8, [2, 4, 3]),
        ("median_rand_f32", i_rand_f, rand_f, [3, 3, 3]),
        ("median_tiny_wide", i_tiny, tiny, [5, 7, 7]),
        ("median_flyem_aniso", i_flyem, flyem, [1, 7, 3]),
    ]:
        s3 = size if len(size) == 3 else [1] + size
        exp = ndi.median_filter(x, size=s3, mode="reflect")
        case(name, src, {"filter": "median", "size": size}, exp, "exact")

    # --- Bilateral: OpenCV float path, per slice.
    for name, src, x, ss, sr, win in [
        ("bilateral_isbi", i_isbi, isbi.astype(np.float32), 3.0, 30.0, 0),
        ("bilateral_rand", i_rand_f, rand_f, 2.0, 50.0, 7),
        ("bilateral_flyem", i_flyem, flyem_f, 1.0, 15.0, 5),
    ]:
        exp = per_slice(lambda s: cv2.bilateralFilter(s, win, sr, ss), x)
        spec = {"filter": "bilateral", "sigma_spatial": ss, "sigma_range": sr, "window": win}
        case(name, src, spec, exp.astype(np.float32), "close", rtol=1e-5, atol=2e-4)

    # --- CLAHE: skimage on the u8 data; we return the result on the input's [min, max].
    def clahe_ref(x, kernel, bins, slope):
        out = exposure.equalize_adapthist(x, kernel_size=kernel, clip_limit=slope / bins, nbins=bins)
        lo, hi = float(x.min()), float(x.max())
        return (lo + out * (hi - lo)).astype(np.float32)

    for name, src, x, block, bins, slope in [
        ("clahe_isbi", i_isbi, isbi, [16, 16], 256, 1.5),
        ("clahe_flyem_2d", i_flyem, flyem, [13, 20], 128, 3.0),
        ("clahe_flyem_3d", i_flyem, flyem, [4, 16, 16], 256, 2.0),
        ("clahe_uniem_fiji", i_uniem, uniem, [127, 127], 256, 1.5),
        ("clahe_isbi_noclip", i_isbi2, isbi2, [10, 7], 64, 0.0),
    ]:
        if len(block) == 2:
            exp = per_slice(lambda s: clahe_ref(s, block, bins, slope), x)
        else:
            exp = clahe_ref(x, block, bins, slope)
        spec = {"filter": "clahe", "block_size": block, "bins": bins, "max_slope": slope}
        case(name, src, spec, exp, "close", rtol=0.0, atol=1e-4)

    # --- Invert.
    case("invert_u8", i_flyem, {"filter": "invert", "max": 255}, util.invert(flyem), "exact")
    lo, hi = rand_f.min(), rand_f.max()
    case("invert_range", i_rand_f, {"filter": "invert"}, ((lo + hi) - rand_f).astype(np.float32), "close", rtol=1e-6, atol=1e-5)

    # --- Normalise: np.percentile + rescale_intensity on float32.
    def norm_ref(x, lo_p, hi_p, omin, omax):
        p_lo, p_hi = np.percentile(x, (lo_p, hi_p))
        return exposure.rescale_intensity(x, in_range=(p_lo, p_hi), out_range=(omin, omax)).astype(np.float32)

    case("normalize_minmax", i_rand_f, {"filter": "normalize"}, norm_ref(rand_f, 0, 100, 0.0, 1.0), "close", rtol=1e-6, atol=1e-6)
    spec = {"filter": "normalize", "low_percentile": 1.0, "high_percentile": 99.0, "out_min": 0.0, "out_max": 255.0}
    case("normalize_pct", i_flyem, spec, norm_ref(flyem_f, 1, 99, 0.0, 255.0), "close", rtol=1e-6, atol=1e-4)
    spec = {"filter": "normalize", "low_percentile": 2.5, "high_percentile": 97.5, "per_slice": True}
    exp = per_slice(lambda s: norm_ref(s, 2.5, 97.5, 0.0, 1.0), rand_f)
    case("normalize_pct_slice", i_rand_f, spec, exp, "close", rtol=1e-6, atol=1e-6)

    # --- Unsharp mask.
    exp = filters.unsharp_mask(flyem_f, radius=(1.0, 2.0, 2.0), amount=1.5, preserve_range=True)
    spec = {"filter": "unsharp_mask", "radius": [1.0, 2.0, 2.0], "amount": 1.5}
    case("unsharp_flyem_3d", i_flyem, spec, exp.astype(np.float32), "close", rtol=1e-5, atol=1e-4)
    exp = per_slice(lambda s: filters.unsharp_mask(s, radius=2.0, amount=1.0), rand01)
    spec = {"filter": "unsharp_mask", "radius": [2.0, 2.0], "amount": 1.0, "clip": [0.0, 1.0]}
    case("unsharp_rand01_2d_clip", i_rand01, spec, exp.astype(np.float32), "close", rtol=1e-5, atol=1e-5)

    # --- Canny (float64 image, thresholds in data units). Compared by pixel agreement.
    for name, src, x, sigma, low, high in [
        ("canny_isbi", i_isbi, isbi, 2.0, 10.0, 30.0),
        ("canny_isbi2", i_isbi2, isbi2, 1.0, 20.0, 60.0),
        ("canny_flyem", i_flyem, flyem, 1.5, 5.0, 20.0),
        ("canny_rand01", i_rand01, rand01, 1.0, 0.1, 0.2),
    ]:
        exp = per_slice(lambda s: feature.canny(s.astype(np.float64), sigma, low, high), x)
        spec = {"filter": "canny", "sigma": sigma, "low_threshold": low, "high_threshold": high}
        case(name, src, spec, as_mask(exp), "agreement", min_agreement=0.999)

    # --- Fixed thresholds.
    case("threshold", i_flyem, {"filter": "threshold", "value": 128}, as_mask(flyem > 128), "exact")
    case("threshold_inv", i_flyem, {"filter": "threshold", "value": 128, "invert": True}, as_mask(flyem <= 128), "exact")

    # --- Otsu: exact on integer data; within one bin on floats.
    t = filters.threshold_otsu(flyem)
    case("otsu_flyem", i_flyem, {"filter": "otsu"}, as_mask(flyem > t), "exact", threshold=float(t))
    exp = per_slice(lambda s: s > filters.threshold_otsu(s), isbi2)
    case("otsu_isbi_slices", i_isbi2, {"filter": "otsu", "per_slice": True}, as_mask(exp), "exact")
    case("otsu_flyem_inv", i_flyem, {"filter": "otsu", "invert": True}, as_mask(flyem <= t), "exact")
    t = filters.threshold_otsu(rand_f)
    bin_width = float(rand_f.max() - rand_f.min()) / 256
    case("otsu_float", i_rand_f, {"filter": "otsu"}, as_mask(rand_f > t), "otsu_float", threshold=float(t), bin_width=bin_width)

    # --- Morphology: scipy binary_* (border_value=0) and grey_* (mode='reflect').
    bin_fns = {
        "erode": ndi.binary_erosion,
        "dilate": ndi.binary_dilation,
        "open": ndi.binary_opening,
        "close": ndi.binary_closing,
    }
    grey_fns = {
        "erode": ndi.grey_erosion,
        "dilate": ndi.grey_dilation,
        "open": ndi.grey_opening,
        "close": ndi.grey_closing,
    }
    for shape in ("box", "cross", "ball"):
        for op, fn in bin_fns.items():
            fp = footprint(shape, (1, 1, 1))
            exp = fn(mask != 0, structure=fp)
            spec = {"filter": "morphology", "op": op, "mode": "binary", "footprint": shape, "radius": [1, 1, 1]}
            case(f"morph_binary_{shape}_{op}", i_mask, spec, as_mask(exp), "exact")
    for radius, shape, op in [([2, 1], "ball", "close"), ([1, 2, 3], "ball", "erode"), ([1, 2, 3], "ball", "dilate"), ([0, 2, 2], "cross", "open")]:
        r3 = radius if len(radius) == 3 else [0] + radius
        fp = footprint(shape, r3)
        exp = bin_fns[op](mask != 0, structure=fp)
        spec = {"filter": "morphology", "op": op, "mode": "binary", "footprint": shape, "radius": radius}
        case(f"morph_binary_{shape}_{op}_{'x'.join(map(str, radius))}", i_mask, spec, as_mask(exp), "exact")
    flyem_bin = (flyem > 120).astype(np.uint8)
    i_flyem_bin = inp("flyem_bin", flyem_bin)
    for op in ("open", "close"):
        fp = footprint("ball", (1, 2, 2))
        exp = bin_fns[op](flyem_bin != 0, structure=fp)
        spec = {"filter": "morphology", "op": op, "mode": "binary", "footprint": "ball", "radius": [1, 2, 2]}
        case(f"morph_binary_flyem_{op}", i_flyem_bin, spec, as_mask(exp), "exact")
    for shape, radius, ops in [
        ("ball", [1, 2, 2], ("erode", "dilate", "open", "close")),
        ("box", [1, 1, 1], ("erode", "close")),
        ("cross", [2, 1, 1], ("dilate", "open")),
        ("ball", [3, 3], ("erode",)),
    ]:
        r3 = radius if len(radius) == 3 else [0] + radius
        for op in ops:
            exp = grey_fns[op](flyem, footprint=footprint(shape, r3))
            spec = {"filter": "morphology", "op": op, "mode": "grey", "footprint": shape, "radius": radius}
            case(f"morph_grey_{shape}_{op}_{'x'.join(map(str, radius))}", i_flyem, spec, exp.astype(np.uint8), "exact")
    exp = ndi.grey_dilation(tiny, footprint=footprint("box", (2, 3, 3)))
    spec = {"filter": "morphology", "op": "dilate", "mode": "grey", "footprint": "box", "radius": [2, 3, 3]}
    case("morph_grey_tiny_wide", i_tiny, spec, exp.astype(np.float32), "exact")

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(
            {
                "generated_by": "scripts/golden/gen_filters.py",
                "versions": {
                    "numpy": np.__version__,
                    "scipy": __import__("scipy").__version__,
                    "scikit-image": skimage.__version__,
                    "opencv": cv2.__version__,
                },
                "cases": cases,
            },
            f,
            indent=1,
        )
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(cases)} cases, {len(written)} arrays, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
