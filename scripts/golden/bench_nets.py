#!/usr/bin/env python3
"""PyTorch side of `cargo xtask bench nets-speed`: the same network, data and work as
crates/nets/examples/bench_speed.rs, timed the same way. Prints one JSON line.

Training: Adam (lr 1e-3, eps 1e-8) steps on random `patch`² crops of the image/label slice
(image scaled to [0, 1] and normalised with mean 0.5, std 0.25 as EM Studio's default),
binary cross-entropy with logits, no augmentation; two warm-up steps, then `steps` timed.
Inference: eval-mode forward passes of a batch of `infer_side`² random tiles, no autograd.

The device is the CPU unless BENCH_DEVICE=cuda; on CUDA each timing ends with a synchronise.

Usage: bench_nets.py <arch JSON> <image.png> <label.png> <batch> <patch> <steps> <infer_side>
"""

import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_nets import build  # noqa: E402


def main():
    arch = json.loads(sys.argv[1])
    image = np.asarray(Image.open(sys.argv[2]), dtype=np.float32) / 255.0
    label = (np.asarray(Image.open(sys.argv[3])) > 0).astype(np.float32)
    batch, patch, steps, side = (int(v) for v in sys.argv[4:8])
    device = torch.device(os.environ.get("BENCH_DEVICE", "cpu"))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    net = build(arch, 1, 1).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
    h, w = image.shape

    def step():
        ys = rng.integers(0, h - patch + 1, batch)
        xs = rng.integers(0, w - patch + 1, batch)
        x = np.stack([image[y : y + patch, x : x + patch] for y, x in zip(ys, xs)])[:, None]
        t = np.stack([label[y : y + patch, x : x + patch] for y, x in zip(ys, xs)])[:, None]
        x = ((torch.from_numpy(x) - 0.5) / 0.25).to(device)
        t = torch.from_numpy(t).to(device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()

    net.train()
    step()
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    train = steps / (time.perf_counter() - t0)

    net.eval()
    runs = 3
    with torch.no_grad():
        net(torch.rand(batch, 1, side, side, device=device))
        sync()
        t0 = time.perf_counter()
        for _ in range(runs):
            net(torch.rand(batch, 1, side, side, device=device)).cpu()
        infer = runs * batch * side * side / 1e6 / (time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "train_steps_per_s": train,
                "infer_mpx_per_s": infer,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "device": str(device),
            }
        )
    )


if __name__ == "__main__":
    main()
