#!/usr/bin/env python3
"""Reference timings for crates/core/examples/bench_metrics.rs (same kernel names, same inputs).

Prints one JSON line per kernel: {"kernel": ..., "impl": ..., "ms": <median>}.

Usage: python scripts/golden/bench_metrics.py /work/shared/data
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from skimage.io import imread
from skimage.measure import label as sk_label
from skimage.metrics import adapted_rand_error, contingency_table, variation_of_information

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_metrics import design_info, design_rand, perturb, thin_framed  # noqa: E402


def load(folder):
    return np.stack([imread(f) for f in sorted(Path(folder).glob("*.png"))])


def bench(kernel, impl, runs, fn):
    times = []
    out = None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"kernel": kernel, "impl": impl, "ms": round(float(np.median(times)), 3)}))
    return out


def semantic(gt, pred):
    a, b = gt != 0, pred != 0
    tp = np.count_nonzero(a & b)
    fp = np.count_nonzero(~a & b)
    fn = np.count_nonzero(a & ~b)
    return tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn), 1 - (fp + fn) / tp


def isbi_sweep(gt, prob):
    """The ISBI protocol with predicted borders thinned, from skimage building blocks."""
    best = 0.0
    gls = [sk_label(g != 0, connectivity=1) for g in gt]
    for t in [round(0.1 * k, 12) for k in range(11)]:
        scores = []
        for gl, p in zip(gls, prob):
            pl = sk_label(~thin_framed(~(p.astype(np.float64) > t)), connectivity=1)
            scores.append((design_rand(gl, pl)[0], design_info(gl, pl)[2]))
        best = max(best, float(np.mean([s[0] for s in scores])))
    return best


def main():
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
    gt = load(data / "flyem-medulla-fib/label").astype(np.uint16)
    pred = perturb(gt)
    bench("contingency_3d", "skimage.metrics.contingency_table", 5,
          lambda: contingency_table(gt, pred, ignore_labels=[0]))

    def rand_vi():
        return adapted_rand_error(gt, pred), variation_of_information(gt, pred, ignore_labels=[0])

    (are, prec, rec), vi = bench(
        "rand_vi_3d", "skimage.metrics adapted_rand_error+variation_of_information", 5, rand_vi)
    print(f"flyem: skimage ARE {are:.6f}, VI split {vi[0]:.4f} merge {vi[1]:.4f} bits",
          file=sys.stderr)
    bench("semantic_3d", "numpy", 5, lambda: semantic(gt, pred))

    labels = load(data / "isbi2012/label")[:3]
    image = load(data / "isbi2012/image")[:3]
    prob = (image.astype(np.float32) / np.float32(255)).astype(np.float32)
    best = bench("isbi_sweep_2d", "skimage thin+label + numpy formulas", 1,
                 lambda: isbi_sweep(labels, prob))
    print(f"isbi2012[0..3]: best V_rand {best:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
