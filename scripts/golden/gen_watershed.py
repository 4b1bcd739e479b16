#!/usr/bin/env python3
"""Golden fixtures for crates/core/src/distance.rs and crates/core/src/labels/watershed.rs.

Writes .npy files to crates/core/tests/golden/watershed/, read by
crates/core/tests/golden_watershed.rs. Each case is a group of files `<kind>_<name>.<part>.npy`:

  edt3d / edt2d       binary EDT, scipy.ndimage.distance_transform_edt(input, sampling)
                      parts: input (uint8), sampling (float64), expected (float32)
  edtlab3d / edtlab2d per-label EDT, edt.edt(labels, anisotropy=sampling, black_border=False)
                      parts: labels (uint8/16/32), sampling, expected (float32)
  ws3d / ws2d         skimage.segmentation.watershed(elevation, markers, connectivity, mask)
                      parts: elevation (float32), markers (uint8/16/32), [mask (uint8)],
                      params (int64: [connectivity]), expected (uint8/16/32)
  plm3d / plm2d       skimage.feature.peak_local_max(image, min_distance, labels,
                      exclude_border=False); parts: image (float32), [labels (uint8..32)],
                      params (int64: [min_distance]), expected (uint16, N x ndim, in order)
  dws3d / dws2d       distance-transform watershed pipeline (see `distance_watershed` below);
                      parts: mask (uint8), sampling, params (int64: [min_distance,
                      connectivity]), expected (uint8/16/32)

Inputs are small random volumes with fixed seeds and small crops of /work/shared/data
(flyem-medulla-fib, isbi2012). Usage: python3 scripts/golden/gen_watershed.py [/work/shared/data]
"""

import glob
import os
import sys
import warnings

import edt
import numpy as np
import scipy.ndimage as ndi
from PIL import Image
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "core", "tests", "golden", "watershed")
DATA = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"


def save(case, part, arr):
    np.save(os.path.join(OUT, f"{case}.{part}.npy"), np.ascontiguousarray(arr))


def small_uint(a):
    a = np.asarray(a)
    assert a.min() >= 0
    if a.size == 0 or a.max() < 256:
        return a.astype(np.uint8)
    return a.astype(np.uint16 if a.max() < 65536 else np.uint32)


def load_stack(folder, z0, z1):
    files = sorted(glob.glob(os.path.join(folder, "*.png")))[z0:z1]
    return np.stack([np.array(Image.open(f)) for f in files])


def boundary_mask(lab):
    """Foreground = labelled voxels not on a label boundary (+x, +y, +z neighbour differs).
    The same rule is used by the benchmarks (examples/bench_watershed.rs, bench_watershed.py)."""
    b = np.zeros(lab.shape, bool)
    b[:, :, :-1] |= lab[:, :, :-1] != lab[:, :, 1:]
    b[:, :-1, :] |= lab[:, :-1, :] != lab[:, 1:, :]
    b[:-1, :, :] |= lab[:-1, :, :] != lab[1:, :, :]
    return (lab != 0) & ~b


def distance_watershed(mask, sampling, min_distance, connectivity):
    """The scikit-image pipeline `distance_watershed` matches."""
    mask = mask.astype(bool)
    dist = ndi.distance_transform_edt(mask, sampling=sampling).astype(np.float32)
    coords = peak_local_max(dist, min_distance=min_distance, labels=mask, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(coords.T)] = np.arange(1, len(coords) + 1)
    return watershed(-dist, markers, connectivity=connectivity, mask=mask)


def blobs(rng, shape, n, radius):
    """Union of random balls (touching/overlapping objects)."""
    grid = np.indices(shape).astype(float)
    out = np.zeros(shape, bool)
    for _ in range(n):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(*radius)
        d2 = sum((g - ci) ** 2 for g, ci in zip(grid, c))
        out |= d2 < r * r
    return out


def random_labels(rng, shape, n, zoom):
    small = rng.integers(0, n, size=[max(1, s // zoom + 1) for s in shape])
    big = ndi.zoom(small, zoom, order=0)
    return big[tuple(slice(0, s) for s in shape)].astype(np.uint32)


def edt_case(kind, name, inp, sampling):
    case = f"{kind}_{name}"
    save(case, "input", inp.astype(np.uint8))
    save(case, "sampling", np.array(sampling, np.float64))
    save(case, "expected", ndi.distance_transform_edt(inp, sampling=sampling).astype(np.float32))


def edtlab_case(kind, name, labels, sampling):
    case = f"{kind}_{name}"
    save(case, "labels", small_uint(labels))
    save(case, "sampling", np.array(sampling, np.float64))
    out = edt.edt(np.ascontiguousarray(labels), anisotropy=tuple(sampling), black_border=False)
    save(case, "expected", out.astype(np.float32))


def ws_case(kind, name, elevation, markers, connectivity, mask=None):
    case = f"{kind}_{name}"
    elevation = elevation.astype(np.float32)
    save(case, "elevation", elevation)
    save(case, "markers", small_uint(markers))
    if mask is not None:
        save(case, "mask", mask.astype(np.uint8))
    save(case, "params", np.array([connectivity], np.int64))
    out = watershed(
        elevation,
        markers.astype(np.int32),
        connectivity=connectivity,
        mask=None if mask is None else mask.astype(bool),
    )
    save(case, "expected", small_uint(out))


def plm_case(kind, name, image, min_distance, labels=None):
    case = f"{kind}_{name}"
    image = image.astype(np.float32)
    save(case, "image", image)
    if labels is not None:
        save(case, "labels", small_uint(labels))
    save(case, "params", np.array([min_distance], np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # min_distance=0 is deliberate
        coords = peak_local_max(
            image,
            min_distance=min_distance,
            labels=None if labels is None else labels.astype(np.int64),
            exclude_border=False,
        )
    save(case, "expected", coords.astype(np.uint16).reshape(-1, image.ndim))


def dws_case(kind, name, mask, sampling, min_distance, connectivity):
    case = f"{kind}_{name}"
    save(case, "mask", mask.astype(np.uint8))
    save(case, "sampling", np.array(sampling, np.float64))
    save(case, "params", np.array([min_distance, connectivity], np.int64))
    save(case, "expected", small_uint(distance_watershed(mask, sampling, min_distance, connectivity)))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.npy")):
        os.remove(f)
    rng = np.random.default_rng(20261124)

    # Real-data crops.
    fly = os.path.join(DATA, "flyem-medulla-fib")
    fly_lab = load_stack(os.path.join(fly, "label"), 100, 112)[:, 60:100, 80:120].astype(np.uint32)
    fly_img = load_stack(os.path.join(fly, "image"), 100, 112)[:, 60:100, 80:120]
    fly_fg = boundary_mask(fly_lab)
    isbi = os.path.join(DATA, "isbi2012")
    isbi_cells = load_stack(os.path.join(isbi, "label"), 10, 16)[:, 200:264, 300:364] == 255
    isbi_img = load_stack(os.path.join(isbi, "image"), 10, 11)[0, 100:180, 100:180]
    isbi_slice = load_stack(os.path.join(isbi, "label"), 3, 4)[0, 0:112, 0:112] == 255

    # ---- binary EDT (scipy) ----
    edt_case("edt3d", "sparse_zeros", rng.random((12, 17, 23)) > 0.03, (1.0, 1.0, 1.0))
    edt_case("edt3d", "blobs_aniso", ~blobs(rng, (10, 30, 30), 6, (4, 9)), (40.0, 4.0, 4.0))
    edt_case("edt3d", "blobs_fractional", blobs(rng, (9, 21, 25), 5, (3, 7)), (1.5, 0.7, 1.1))
    edt_case("edt3d", "no_zero", np.ones((3, 4, 5), bool), (2.0, 3.0, 1.0))
    edt_case("edt3d", "one_voxel_fg", np.ones((1, 1, 1), bool), (1.0, 1.0, 1.0))
    edt_case("edt3d", "one_voxel_bg", np.zeros((1, 1, 1), bool), (1.0, 1.0, 1.0))
    edt_case("edt3d", "single_zero", np.arange(7 * 8 * 9).reshape(7, 8, 9) != 200, (3.0, 2.0, 1.0))
    edt_case("edt3d", "line_z", np.array([1, 1, 0, 1, 1, 1, 1], bool).reshape(7, 1, 1), (5.0, 1.0, 1.0))
    edt_case("edt3d", "flyem_fg", fly_fg, (10.0, 10.0, 10.0))
    edt_case("edt2d", "random", rng.random((31, 47)) > 0.05, (1.0, 1.0))
    edt_case("edt2d", "blobs_aniso", blobs(rng, (40, 50), 5, (5, 12)), (4.0, 2.5))
    edt_case("edt2d", "no_zero", np.ones((3, 4), bool), (1.0, 1.0))
    edt_case("edt2d", "isbi_cells", isbi_slice, (4.0, 4.0))

    # ---- per-label EDT (edt package) ----
    edtlab_case("edtlab3d", "random", random_labels(rng, (11, 19, 23), 5, 4), (1.0, 1.0, 1.0))
    edtlab_case("edtlab3d", "random_aniso", random_labels(rng, (9, 16, 21), 4, 3), (3.0, 1.0, 1.5))
    edtlab_case("edtlab3d", "uniform", np.full((2, 3, 4), 7, np.uint32), (1.0, 1.0, 1.0))
    edtlab_case("edtlab3d", "flyem", fly_lab, (10.0, 10.0, 10.0))
    edtlab_case("edtlab2d", "random", random_labels(rng, (29, 41), 6, 5), (1.0, 2.0))

    # ---- seeded watershed (scikit-image) ----
    def random_markers(shape, n, nlabels):
        m = np.zeros(shape, np.uint32)
        flat = rng.choice(m.size, size=n, replace=False)
        m.flat[flat] = rng.integers(1, nlabels + 1, size=n)
        return m

    q3 = rng.integers(0, 4, (10, 15, 17))  # few levels: many ties and plateaus
    m3 = random_markers(q3.shape, 25, 18)
    for c in (1, 2, 3):
        ws_case("ws3d", f"ties_c{c}", q3, m3, c)
    ws_case("ws3d", "flat", np.zeros((9, 12, 13)), random_markers((9, 12, 13), 12, 12), 1)
    mask3 = rng.random(q3.shape) > 0.25
    ws_case("ws3d", "ties_mask_c1", q3, m3, 1, mask=mask3)
    ws_case("ws3d", "ties_mask_c3", q3, m3, 3, mask=mask3)
    smooth = ndi.gaussian_filter(rng.random((12, 20, 20)), 2)
    ws_case("ws3d", "smooth_c1", smooth, random_markers(smooth.shape, 15, 15), 1)
    nan_elev = q3.astype(np.float32)
    nan_elev[rng.random(q3.shape) < 0.05] = np.nan
    ws_case("ws3d", "nan_c1", nan_elev, m3, 1)
    fly_markers = np.where(ndi.distance_transform_edt(fly_fg) >= 3, fly_lab, 0)
    ws_case("ws3d", "flyem_c1", 255 - fly_img.astype(np.float32), fly_markers, 1)
    ws_case(
        "ws3d",
        "flyem_mask_c2",
        255 - fly_img[:5].astype(np.float32),
        fly_markers[:5],
        2,
        mask=fly_lab[:5] % 5 != 0,
    )

    q2 = rng.integers(0, 3, (40, 53))
    m2 = random_markers(q2.shape, 30, 20)
    ws_case("ws2d", "ties_c1", q2, m2, 1)
    ws_case("ws2d", "ties_c2", q2, m2, 2)
    ws_case("ws2d", "ties_mask_c1", q2, m2, 1, mask=rng.random(q2.shape) > 0.3)
    adj = np.zeros((5, 9), np.uint32)
    adj[2, 3], adj[2, 5], adj[1, 4] = 1, 2, 3  # equal-valued markers competing for one pixel
    ws_case("ws2d", "adjacent_markers", np.zeros((5, 9)), adj, 1)
    isbi_markers = ndi.label(ndi.distance_transform_edt(isbi_slice[:80, :80]) > 5)[0]
    ws_case("ws2d", "isbi", 255 - isbi_img.astype(np.float32), isbi_markers, 1)

    # ---- peak_local_max (scikit-image) ----
    img3 = np.round(ndi.gaussian_filter(rng.random((10, 16, 18)), 1.5) * 40)  # plateaus
    lab3 = random_labels(rng, img3.shape, 4, 6)
    for d in (0, 1, 2, 3):
        plm_case("plm3d", f"plateaus_d{d}", img3, d)
    for d in (1, 3):
        plm_case("plm3d", f"plateaus_labels_d{d}", img3, d, labels=lab3)
    thin = np.zeros((6, 12, 14), np.uint32)
    thin[1:5, 2:9, 2:9] = 1  # a block (flat -> no peaks)
    thin[2, 10, 1:13] = 2  # a one-voxel-thin rod (flat -> every voxel is "isolated")
    thin[4, 3:6, 11] = 3
    plm_case("plm3d", "flat_regions_d2", np.where(thin > 0, 5.0, 0.0), 2, labels=thin)
    plm_case("plm3d", "flat_whole_d1", np.full((4, 5, 6), 1.0), 1)
    plm_case("plm3d", "flyem_dist_d3", ndi.distance_transform_edt(fly_fg), 3, labels=fly_fg.astype(np.uint32))
    img2 = np.round(ndi.gaussian_filter(rng.random((45, 50)), 2) * 60)
    plm_case("plm2d", "plateaus_d1", img2, 1)
    plm_case("plm2d", "plateaus_d4", img2, 4)
    plm_case("plm2d", "plateaus_labels_d2", img2, 2, labels=random_labels(rng, img2.shape, 5, 9))
    thin2 = np.zeros((9, 11), np.uint32)
    thin2[1:4, 1:6] = 1
    thin2[6, 1:10] = 2
    thin2[8, 10] = 3
    plm_case("plm2d", "flat_regions_d1", np.where(thin2 > 0, 2.0, 0.0), 1, labels=thin2)

    # ---- distance-transform watershed pipeline ----
    spheres = blobs(rng, (24, 30, 30), 6, (5, 8))
    dws_case("dws3d", "spheres_d3_c1", spheres, (1.0, 1.0, 1.0), 3, 1)
    dws_case("dws3d", "spheres_aniso_d2_c3", spheres, (2.0, 1.0, 1.0), 2, 3)
    dws_case("dws3d", "flyem_d3_c1", fly_fg, (10.0, 10.0, 10.0), 3, 1)
    dws_case("dws3d", "isbi_d4_c1", isbi_cells, (50.0, 4.0, 4.0), 4, 1)
    circles = blobs(rng, (80, 80), 8, (8, 16))
    dws_case("dws2d", "circles_d5_c1", circles, (1.0, 1.0), 5, 1)
    dws_case("dws2d", "circles_d2_c2", circles, (1.0, 1.0), 2, 2)
    dws_case("dws2d", "isbi_d6_c1", isbi_slice, (4.0, 4.0), 6, 1)

    total = sum(os.path.getsize(f) for f in glob.glob(os.path.join(OUT, "*.npy")))
    print(f"wrote {len(glob.glob(os.path.join(OUT, '*.npy')))} files, {total / 1e6:.2f} MB to {OUT}")


if __name__ == "__main__":
    main()
