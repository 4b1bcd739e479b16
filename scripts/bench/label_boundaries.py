"""Boundary masks from dense instance labels, for the classic baseline of the FFN benchmark
(BENCHMARKS.md, "Flood-filling networks"): a 2D CNN learns these boundaries, and a 3D
watershed of its interior map is scored against the instance labels.

A pixel is boundary (255) where one of its four in-plane neighbours has another label, or
where it is unlabelled (0); everything else is 0. Needs numpy and Pillow.

Usage: python label_boundaries.py <label folder> <output folder>
"""

import pathlib
import sys

import numpy as np
from PIL import Image


def boundaries(labels: np.ndarray) -> np.ndarray:
    """255 where a 4-neighbour differs or the pixel is unlabelled, else 0."""
    edge = labels == 0
    dy = labels[1:, :] != labels[:-1, :]
    dx = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    return np.where(edge, 255, 0).astype(np.uint8)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: label_boundaries.py <label folder> <output folder>")
    source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    files = sorted(source.glob("*.png"))
    if not files:
        sys.exit(f"{source}: no PNG slices")
    target.mkdir(parents=True, exist_ok=True)
    share = []
    for f in files:
        edge = boundaries(np.array(Image.open(f)))
        share.append((edge > 0).mean())
        Image.fromarray(edge).save(target / f.name)
    print(f"{len(files)} slices, {100 * np.mean(share):.1f} % boundary pixels -> {target}")


if __name__ == "__main__":
    main()
