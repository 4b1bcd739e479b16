#!/usr/bin/env python3
"""Golden fixtures for importing PyTorch weights (crates/nets/tests/golden_torch_import.rs).

For each case: a small network from torch_nets.py (the PyTorch twins of EM Studio's
architectures) with random weights and random batch-norm statistics, its `state_dict` written
with `safetensors.torch.save_file` (exactly what a PyTorch user would export), and an input
batch with the network's eval-mode output in `<case>.io.safetensors` (tensors `input`, `output`).
cases.json lists the cases with EM Studio's architecture JSON.

Reference: torch (version pinned in scripts/golden/requirements-torch.txt).
Usage: python3 scripts/golden/gen_nets.py
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_nets import build  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "nets", "tests", "golden")

CASES = [
    ("unet_gray_binary", {"arch": "unet", "depth": 2, "base_width": 4}, 1, 1, (2, 16, 24)),
    ("unet_rgb_3class", {"arch": "unet", "depth": 3, "base_width": 3}, 3, 3, (1, 32, 16)),
    ("unet_deep", {"arch": "unet", "depth": 6, "base_width": 1}, 1, 2, (1, 64, 64)),
    ("resnet", {"arch": "resnet", "blocks": 2, "base_width": 4}, 1, 2, (2, 16, 12)),
    ("highway", {"arch": "highway", "units": 2, "base_width": 4}, 1, 1, (1, 12, 20)),
    (
        "densenet",
        {"arch": "densenet", "blocks": 2, "layers": 2, "growth": 3, "base_width": 4},
        3,
        2,
        (1, 16, 16),
    ),
]


def randomise(net, gen):
    """Random weights and batch-norm statistics, so eval-mode normalisation matters."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.5 if name.endswith("weight") else 0.2))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(2026)
    listing = []
    for name, arch, cin, cout, (batch, h, w) in CASES:
        net = build(arch, cin, cout)
        randomise(net, gen)
        net.eval()
        x = torch.randn((batch, cin, h, w), generator=gen)
        with torch.no_grad():
            y = net(x)
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, os.path.join(OUT, f"{name}.safetensors"))
        save_file({"input": x.contiguous(), "output": y.contiguous()}, os.path.join(OUT, f"{name}.io.safetensors"))
        listing.append({"name": name, "arch": arch, "in_channels": cin, "out_channels": cout})
        print(f"{name}: {sum(p.numel() for p in net.parameters())} parameters, output {tuple(y.shape)}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": listing}, f, indent=1)


if __name__ == "__main__":
    main()
