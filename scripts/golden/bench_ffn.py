#!/usr/bin/env python3
"""PyTorch side of the FFN rows of `cargo xtask bench nets-speed`: the twin in torch_ffn.py
with the same work as crates/nets/examples/bench_ffn_speed.rs, timed the same way. Prints one
JSON line.

Training: SGD (lr 0.001, element-wise gradient clip 0.7) steps on a batch of random FOV-sized
image and mask inputs with soft 0.05/0.95 targets, sigmoid cross-entropy; 2 warm-up steps, then
`steps` timed. Inference: `runs` no-grad forward passes of one FOV, voxels per second.
The device is the CPU unless BENCH_DEVICE=cuda (each timing then ends with a synchronise).

Usage: bench_ffn.py <preset> <batch> <steps> <runs>
"""

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ffn import PRESETS, ConvStack3D, soft_bce  # noqa: E402


def main():
    preset, batch, steps, runs = sys.argv[1], *(int(v) for v in sys.argv[2:5])
    p = PRESETS[preset]
    device = torch.device(os.environ.get("BENCH_DEVICE", "cpu"))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.manual_seed(1)
    fx, fy, fz = p["fov"]
    shape = (batch, 1, fz, fy, fx)
    net = ConvStack3D(p["depth"], p["features"]).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)

    def step():
        image = torch.randn(shape, device=device)
        seed = torch.rand(shape, device=device) * 6 - 3
        target = (torch.rand(shape, device=device) < 0.3).float() * 0.9 + 0.05
        logits = net(image, seed)
        loss = soft_bce(logits, target)
        opt.zero_grad()
        loss.backward()
        for q in net.parameters():
            q.grad.clamp_(-0.7, 0.7)
        opt.step()
        logits.detach().cpu()

    net.train()
    t = time.perf_counter()
    step()
    step()
    sync()
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    train = steps / (time.perf_counter() - t)

    net.eval()
    one = (1, 1, fz, fy, fx)
    with torch.no_grad():
        net(torch.randn(one, device=device), torch.randn(one, device=device)).cpu()
        sync()
        t = time.perf_counter()
        for _ in range(runs):
            net(torch.randn(one, device=device), torch.randn(one, device=device)).cpu()
        sync()
        infer = runs * fz * fy * fx / (time.perf_counter() - t)
    print(
        json.dumps(
            {
                "train_steps_per_s": train,
                "infer_voxels_per_s": infer,
                "threads": torch.get_num_threads(),
                "device": str(device),
                "train_warmup_s": warmup,
            }
        )
    )


if __name__ == "__main__":
    main()
