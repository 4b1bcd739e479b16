#!/usr/bin/env python3
"""Golden fixtures for the FFN seed policy (crates/nets/tests/golden_ffn_seeds.rs).

google/ffn's PolicyPeaks (ffn/inference/seed.py), step by step with its own libraries:
  edges  = scipy.ndimage.generic_gradient_magnitude(image, scipy.ndimage.sobel)
  thresh = scipy.ndimage.gaussian_filter(edges, sigma=49/6)
  dt     = scipy.ndimage.distance_transform_edt(1 - (edges > thresh))
  peaks  = skimage.feature.peak_local_max(dt + noise * 1e-4, min_distance=3, threshold_abs=0,
                                          threshold_rel=0), sorted ascending (z, y, x)
The noise is google/ffn's (numpy RandomState(42).rand) and is saved with the distances, so the
Rust test feeds the same values to its peak finder.

Files, per case, in crates/nets/tests/golden/ffn/:
  seeds__<case>__image.npy (float32, the image given to the policy), __dt.npy (float32),
  __values.npy (float64, dt + noise as google/ffn adds them), __peaks.npy (int64, N x 3)

Usage: python3 scripts/golden/gen_ffn_seeds.py [/work/shared/data]
"""

import os
import sys

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.feature import peak_local_max

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "nets", "tests", "golden", "ffn")


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


def case(name, image):
    image = image.astype(np.float32)
    edges = ndimage.generic_gradient_magnitude(image, ndimage.sobel)
    thresh = ndimage.gaussian_filter(edges, sigma=49.0 / 6.0)
    filt = edges > thresh
    dt = ndimage.distance_transform_edt(1 - filt).astype(np.float32)
    noise = np.random.RandomState(42).rand(*dt.shape) * 1e-4
    values = dt.astype(np.float64) + noise
    peaks = peak_local_max(values, min_distance=3, threshold_abs=0, threshold_rel=0)
    peaks = np.array(sorted(map(tuple, peaks)), dtype=np.int64).reshape(-1, 3)
    save(f"seeds__{name}__image", image)
    save(f"seeds__{name}__dt", dt)
    save(f"seeds__{name}__values", values)
    save(f"seeds__{name}__peaks", peaks)
    print(name, image.shape, len(peaks), "peaks")


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
    os.makedirs(OUT, exist_ok=True)
    # Smooth random blobs.
    rng = np.random.RandomState(7)
    blobs = ndimage.gaussian_filter(rng.rand(24, 40, 40).astype(np.float32), 2.0)
    case("blobs", (blobs - blobs.mean()) / blobs.std())
    # A crop of FlyEM FIB-SEM, normalised as a model would.
    folder = os.path.join(data, "flyem-medulla-fib", "image")
    names = sorted(os.listdir(folder))[100:124]
    crop = np.stack([np.asarray(Image.open(os.path.join(folder, n)))[60:108, 80:128] for n in names])
    crop = crop.astype(np.float32) / 255.0
    case("flyem", (crop - crop.mean()) / crop.std())


if __name__ == "__main__":
    main()
