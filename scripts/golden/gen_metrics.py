#!/usr/bin/env python3
"""Golden fixtures for crates/core/src/metrics (tests: crates/core/tests/golden_metrics.rs).

Writes .npy files to crates/core/tests/golden/metrics/:

* Rand / VI / semantic cases ``<case>_gt.npy``, ``<case>_pred.npy``, ``<case>_scores.npy``
  (float64, layout in SCORE_FIELDS below). References:
  - ``skimage.metrics.adapted_rand_error`` (alpha 0.5 and 0.3) and
    ``skimage.metrics.variation_of_information(gt, pred, ignore_labels=[0])``;
  - numpy formulas for the DESIGN.md convention (self pairs, predicted 0 inside the GT foreground
    as singletons), cross-checked here against skimage where the conventions coincide;
  - numpy confusion counts for the semantic scores.
* ``<case>_errors.npy``: the split/merge lists computed with numpy (flat int64 encoding, see
  ``encode_errors``), for the flyem crop.
* ``thin_in.npy`` / ``thin_out.npy``: ``skimage.morphology.thin`` of random and real masks.
* ``label_out.npy``: ``skimage.measure.label(thin_in, connectivity=1)``.
* ``thin_framed.npy``: ``thin_framed`` (skimage's thinning tables with a fixed object frame
  outside the image) of ``thin_in``.
* ``isbi_gt.npy``, ``isbi_prob.npy`` (interior probability) and ``isbi_bprob.npy`` (boundary
  probability), and ``isbi_expected_<variant>.npy`` (thresholds × 9; variants: thin = prediction
  borders thinned, thin_both = GT too, nothin, boundary = boundary-probability input): the ISBI
  sweep composed of thin_framed + skimage.measure.label + the numpy formulas.

Usage: python scripts/golden/gen_metrics.py /work/shared/data
"""

import json
import sys
from pathlib import Path

import numpy as np
from skimage.io import imread
from scipy.ndimage import gaussian_filter
from skimage.measure import label as sk_label
from skimage.metrics import adapted_rand_error, variation_of_information
from skimage.morphology import thin as sk_thin

OUT = Path(__file__).resolve().parents[2] / "crates/core/tests/golden/metrics"

SCORE_FIELDS = [
    "sk_are", "sk_precision", "sk_recall", "sk_are_alpha03",
    "sk_vi_split", "sk_vi_merge",
    "d_vrand", "d_split", "d_merge", "d_vrand_alpha03",
    "d_vi_split", "d_vi_merge", "d_vinfo", "d_vinfo_split", "d_vinfo_merge", "d_vinfo_alpha03",
    "tp", "fp", "fn", "tn", "jaccard", "dice", "conformity", "precision", "recall",
]


def perturb(gt):
    """The deterministic 'prediction' used by the tests and benchmarks (mirrored in Rust):
    GT 0 and a hole slab stay/become 0, labels with g % 7 == 3 are split at x = X/2 (right half
    gets g + 100000), labels with g % 5 == 1 are merged into g + 1."""
    g = gt.astype(np.uint32)
    nz, _, nx = g.shape
    z = np.arange(nz)[:, None, None]
    x = np.arange(nx)[None, None, :]
    pred = np.where(g % 5 == 1, g + 1, g)
    pred = np.where((g % 7 == 3) & (x >= nx // 2), g + 100000, pred)
    hole = ((z % 50) < 2) & (x < 25)
    return np.where(hole | (g == 0), 0, pred).astype(np.uint32)


def sequential(a):
    """Relabels to 0..k keeping 0 (skimage's sparse tables are sized by the maximum label)."""
    u, inv = np.unique(a, return_inverse=True)
    if u[0] != 0:
        inv = inv + 1
    return inv.reshape(a.shape).astype(np.int64)


def design_sums(gt, pred, singletons=True, distinct=False):
    """Foreground-restricted Σn², Σt², Σs² and n, as Python ints."""
    g = gt.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    fg = g != 0
    g, p = g[fg], p[fg]
    n = int(g.size)
    _, t = np.unique(g, return_counts=True)
    single = int((p == 0).sum()) if singletons else 0
    keep = (p != 0) if singletons else np.ones_like(p, dtype=bool)
    _, nij = np.unique(g[keep] * (1 << 33) + p[keep], return_counts=True)
    _, s = np.unique(p[keep], return_counts=True)
    sp2 = int((nij.astype(object) ** 2).sum()) + single
    st2 = int((t.astype(object) ** 2).sum())
    ss2 = int((s.astype(object) ** 2).sum()) + single
    if distinct:
        sp2, st2, ss2 = sp2 - n, st2 - n, ss2 - n
    return sp2, st2, ss2, n


def ratio(a, b):
    return a / b if b > 0 else 1.0


def design_rand(gt, pred, alpha=0.5, singletons=True, distinct=False):
    sp2, st2, ss2, _ = design_sums(gt, pred, singletons, distinct)
    v = ratio(float(sp2), alpha * ss2 + (1 - alpha) * st2)
    return v, ratio(float(sp2), st2), ratio(float(sp2), ss2)


def xlogx(c):
    c = c.astype(np.float64)
    return float((c * np.log2(np.maximum(c, 1))).sum())


def design_info(gt, pred, alpha=0.5, singletons=True):
    """(vi_split, vi_merge, v_info, v_info_split, v_info_merge) in bits."""
    g = gt.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    fg = g != 0
    g, p = g[fg], p[fg]
    n = g.size
    if n == 0:
        return 0.0, 0.0, 1.0, 1.0, 1.0
    _, t = np.unique(g, return_counts=True)
    keep = (p != 0) if singletons else np.ones_like(p, dtype=bool)
    _, nij = np.unique(g[keep] * (1 << 33) + p[keep], return_counts=True)
    _, s = np.unique(p[keep], return_counts=True)
    st, ss, sn = xlogx(t), xlogx(s), xlogx(nij)
    ht = max(np.log2(n) - st / n, 0.0)
    hs = max(np.log2(n) - ss / n, 0.0)
    vs = max((st - sn) / n, 0.0)
    vm = max((ss - sn) / n, 0.0)
    mi = max(ht - vm, 0.0)
    return vs, vm, ratio(mi, alpha * ht + (1 - alpha) * hs), ratio(mi, hs), ratio(mi, ht)


def semantic(gt, pred):
    a = gt.ravel() != 0
    b = pred.ravel() != 0
    tp = int((a & b).sum())
    fp = int((~a & b).sum())
    fn = int((a & ~b).sum())
    tn = int((~a & ~b).sum())
    empty = tp == 0 and fp == 0 and fn == 0

    def r(x, y):
        return x / y if y > 0 else (1.0 if empty else 0.0)

    if tp > 0:
        conf = 1 - (fp + fn) / tp
    else:
        conf = 1.0 if fp + fn == 0 else np.nan
    return [tp, fp, fn, tn, r(tp, tp + fp + fn), r(2 * tp, 2 * tp + fp + fn), conf,
            r(tp, tp + fp), r(tp, tp + fn)]


def scores(gt, pred):
    if (gt != 0).any():
        gs, ps = sequential(gt), sequential(pred)
        are, prec, rec = adapted_rand_error(gs, ps)
        are03, _, _ = adapted_rand_error(gs, ps, alpha=0.3)
        vi = variation_of_information(gs, ps, ignore_labels=[0])
        # The numpy formulas reproduce skimage in its own convention (validates the formulas).
        v, sp, mg = design_rand(gt, pred, 0.5, singletons=False, distinct=True)
        assert abs(1 - v - are) < 1e-12 and abs(sp - prec) < 1e-12 and abs(mg - rec) < 1e-12
        v03, _, _ = design_rand(gt, pred, 0.7, singletons=False, distinct=True)
        assert abs(1 - v03 - are03) < 1e-12, "skimage alpha a == ours 1 - a"
        lvs, lvm, *_ = design_info(gt, pred, singletons=False)
        assert abs(lvs - vi[0]) < 1e-9 and abs(lvm - vi[1]) < 1e-9
    else:
        # skimage returns NaN without GT foreground; the Rust test skips NaN references.
        are = prec = rec = are03 = np.nan
        vi = [np.nan, np.nan]
    dv, dsp, dmg = design_rand(gt, pred, 0.5)
    dv03, _, _ = design_rand(gt, pred, 0.3)
    vs, vm, vinfo, visp, vimg = design_info(gt, pred, 0.5)
    vinfo03 = design_info(gt, pred, 0.3)[2]
    row = [are, prec, rec, are03, vi[0], vi[1], dv, dsp, dmg, dv03, vs, vm, vinfo, visp, vimg,
           vinfo03] + semantic(gt, pred)
    assert len(row) == len(SCORE_FIELDS)
    return np.array(row, dtype=np.float64)


def encode_errors(gt, pred, min_voxels, min_fraction):
    """Split/merge lists in the Rust order, flattened to int64:
    [n_splits, (gt_label, gt_voxels, unlabelled, split_pairs, z, y, x, k, (label, voxels, z, y, x)*k)*,
     n_merges, (pred_label, pred_voxels, background, merge_pairs, z, y, x, k, (...)*k)*]."""
    shape = gt.shape
    g = gt.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    key = g * (1 << 33) + p
    keys, first, counts = np.unique(key, return_index=True, return_counts=True)
    cg, cp = keys >> 33, keys & ((1 << 33) - 1)
    pos = lambda f: list(np.unravel_index(int(f), shape))
    gl, gfirst, gcount = np.unique(g, return_index=True, return_counts=True)
    gsize = dict(zip(gl.tolist(), gcount.tolist()))
    pl, pfirst, pcount = np.unique(p, return_index=True, return_counts=True)
    pinfo = {int(a): (int(b), int(c)) for a, b, c in zip(pl, pfirst, pcount)}

    def sig(c, gv):
        return c >= min_voxels and c >= min_fraction * gv

    splits = []
    for lab, f0, tot in zip(gl, gfirst, gcount):
        if lab == 0:
            continue
        m = cg == lab
        pieces, unl, sq = [], 0, 0
        for q, c, f in zip(cp[m], counts[m], first[m]):
            c = int(c)
            if q == 0:
                unl += c
                sq += c
                continue
            sq += c * c
            if sig(c, tot):
                pieces.append((-c, int(q), int(f)))
        if len(pieces) >= 2:
            pieces.sort()
            pairs = (int(tot) ** 2 - sq) // 2
            splits.append((-pairs, int(lab), [int(lab), int(tot), unl, pairs] + pos(f0) + [len(pieces)]
                           + sum(([q, -c] + pos(f) for c, q, f in pieces), [])))
    merges = []
    for q in np.unique(cp):
        if q == 0:
            continue
        m = cp == q
        objs, bg, fgv, sq = [], 0, 0, 0
        for lab, c, f in zip(cg[m], counts[m], first[m]):
            c = int(c)
            if lab == 0:
                bg += c
                continue
            fgv += c
            sq += c * c
            if sig(c, gsize[int(lab)]):
                objs.append((-c, int(lab), int(f)))
        if len(objs) >= 2:
            objs.sort()
            pairs = (fgv * fgv - sq) // 2
            pf, pc = pinfo[int(q)]
            merges.append((-pairs, int(q), [int(q), pc, bg, pairs] + pos(pf) + [len(objs)]
                           + sum(([lab, -c] + pos(f) for c, lab, f in objs), [])))
    splits.sort(key=lambda e: (e[0], e[1]))
    merges.sort(key=lambda e: (e[0], e[1]))
    flat = [len(splits)] + sum((e[2] for e in splits), []) + [len(merges)] + sum((e[2] for e in merges), [])
    return np.array(flat, dtype=np.int64)


def read_stack(folder, z0, z1, y0, y1, x0, x1):
    files = sorted(Path(folder).glob("*.png"))[z0:z1]
    return np.stack([imread(f)[y0:y1, x0:x1] for f in files])


def thin_framed(mask):
    """skimage.morphology.thin (same Guo-Hall tables and loop) with the pixels outside the image
    counted as object and never deleted, so curves that reach the image edge keep reaching it."""
    from scipy import ndimage as ndi
    from skimage.morphology._skeletonize import G123_LUT, G123P_LUT

    skel = np.pad(mask.astype(bool), 1, constant_values=True).view(np.uint8)
    frame = np.ones(skel.shape, bool)
    frame[1:-1, 1:-1] = False
    nbr = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], dtype=np.uint8)
    before, after = -1, int(skel.sum())
    while before != after:
        before = after
        for lut in (G123_LUT, G123P_LUT):
            d = np.take(lut, ndi.correlate(skel, nbr, mode="constant")) & ~frame
            skel[d] = 0
        after = int(skel.sum())
    return skel[1:-1, 1:-1].astype(bool)


def isbi_sweep(gt, prob, thresholds, boundary_high, thin_pred, thin_gt):
    """The ISBI protocol from skimage building blocks; rows: threshold, v_rand, split, merge,
    v_info, info split, info merge, vi, slices."""
    def segment(interior, thin):
        if thin:
            interior = ~thin_framed(~interior)
        return sk_label(interior, connectivity=1)

    gts = [segment(gt[z] != 0, thin_gt) if (gt[z] != 0).any() else None for z in range(gt.shape[0])]
    rows = []
    for t in thresholds:
        acc = []
        for z, gl in enumerate(gts):
            if gl is None:
                continue
            v = prob[z].astype(np.float64)
            interior = (1.0 - v > t) if boundary_high else (v > t)
            pl = segment(interior, thin_pred)
            r = design_rand(gl, pl)
            i = design_info(gl, pl)
            acc.append([r[0], r[1], r[2], i[2], i[3], i[4], i[0] + i[1]])
        m = np.mean(acc, axis=0) if acc else [1.0] * 6 + [0.0]
        rows.append([t] + list(m) + [len(acc)])
    return np.array(rows, dtype=np.float64)


def main():
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.glob("*.npy"):
        f.unlink()
    rng = np.random.default_rng(20261124)
    cases = {}

    def case(name, gt, pred):
        np.save(OUT / f"{name}_gt.npy", gt)
        np.save(OUT / f"{name}_pred.npy", pred)
        np.save(OUT / f"{name}_scores.npy", scores(gt, pred))
        cases[name] = [str(gt.dtype), str(pred.dtype), list(gt.shape)]

    # Random labels, zeros in both, large u32 predicted ids.
    gt = rng.integers(0, 6, size=(6, 10, 12)).astype(np.uint16)
    ids = np.array([0, 7, 4_000_000_000, 65536, 12, 99, 1 << 31], dtype=np.uint32)
    case("random3d", gt, ids[rng.integers(0, 7, size=gt.shape)])
    # 2D, u8 vs u16.
    case("random2d", rng.integers(0, 4, size=(17, 23)).astype(np.uint8),
         rng.integers(0, 9, size=(17, 23)).astype(np.uint16))
    # Blocky labels with a perturbed prediction without zeros in the GT foreground.
    blocks = rng.integers(0, 40, size=(3, 4, 5)).astype(np.uint32)
    gt = np.kron(blocks, np.ones((3, 4, 4), dtype=np.uint32))
    pred = gt.copy() + 1
    pred[:, :, 10:] += 50
    pred[pred % 6 == 0] = 3
    case("blocky3d", gt, pred.astype(np.uint32))
    # Degenerate: single object vs single object; empty GT.
    case("single", np.ones((2, 3, 3), np.uint8), np.full((2, 3, 3), 5, np.uint8))
    case("empty_gt", np.zeros((2, 3, 3), np.uint16), rng.integers(0, 3, (2, 3, 3)).astype(np.uint16))
    # Crop of the FlyEM medulla GT with the benchmark perturbation.
    fly = read_stack(data / "flyem-medulla-fib/label", 100, 124, 100, 148, 100, 148).astype(np.uint16)
    fly_pred = perturb(fly)
    case("flyem", fly, fly_pred)
    np.save(OUT / "flyem_errors.npy", encode_errors(fly, fly_pred, 10, 0.01))
    np.save(OUT / "flyem_errors_all.npy", encode_errors(fly, fly_pred, 1, 0.0))

    # Thinning and 4-connected labelling.
    masks = [rng.random((40, 50)) < d for d in (0.3, 0.5, 0.6, 0.7, 0.8)]
    blob = np.zeros((40, 50), bool)
    yy, xx = np.mgrid[:40, :50]
    blob |= (yy - 20) ** 2 / 150 + (xx - 25) ** 2 / 400 < 1
    blob[5:8, 2:48] = True
    blob[30:34, 10:14] = True
    masks.append(blob)
    isbi_lab = read_stack(data / "isbi2012/label", 0, 6, 200, 240, 300, 350)
    masks += [lab == 0 for lab in isbi_lab]  # real membrane masks
    masks = np.stack(masks).astype(np.uint8)
    np.save(OUT / "thin_in.npy", masks)
    np.save(OUT / "thin_out.npy", np.stack([sk_thin(m.astype(bool)) for m in masks]).astype(np.uint8))
    np.save(OUT / "thin_framed.npy", np.stack([thin_framed(m.astype(bool)) for m in masks]).astype(np.uint8))
    labels = np.stack([sk_label(m.astype(bool), connectivity=1) for m in masks])
    assert labels.max() < 65536
    np.save(OUT / "label_out.npy", labels.astype(np.uint16))

    # ISBI sweep on an 80×80 crop of isbi2012 (about 12 cells per slice). The interior
    # probability is a blurred GT mixed with the EM image and noise, so the sweep has a clear
    # optimum; thresholds near 1 leave no interior.
    gt = read_stack(data / "isbi2012/label", 0, 3, 0, 80, 240, 320)
    img = read_stack(data / "isbi2012/image", 0, 3, 0, 80, 240, 320)
    soft = gaussian_filter(gt.astype(np.float64) / 255, sigma=(0, 1.5, 1.5))
    mix = 0.7 * soft + 0.2 * img / 255 + 0.1 * rng.random(gt.shape)
    prob = np.clip(mix, 0, 1).astype(np.float32)
    bprob = (np.float32(1) - prob).astype(np.float32)
    np.save(OUT / "isbi_gt.npy", gt)
    np.save(OUT / "isbi_prob.npy", prob)
    np.save(OUT / "isbi_bprob.npy", bprob)
    ths = [round(0.1 * k, 12) for k in range(11)]
    np.save(OUT / "isbi_expected_thin.npy", isbi_sweep(gt, prob, ths, False, True, False))
    np.save(OUT / "isbi_expected_thin_both.npy", isbi_sweep(gt, prob, ths, False, True, True))
    np.save(OUT / "isbi_expected_nothin.npy", isbi_sweep(gt, prob, ths, False, False, False))
    np.save(OUT / "isbi_expected_boundary.npy", isbi_sweep(gt, bprob, ths, True, True, False))

    (OUT / "README.md").write_text(
        "Generated by scripts/golden/gen_metrics.py; do not edit.\n\n"
        "`<case>_scores.npy` fields, in order: " + ", ".join(SCORE_FIELDS) + ".\n\n"
        "Cases: " + json.dumps(cases) + "\n")
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1e6:.2f} MB to {OUT}")


if __name__ == "__main__":
    main()
