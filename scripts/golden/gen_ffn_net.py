#!/usr/bin/env python3
"""Golden fixtures for the FFN network (crates/nets/tests/golden_ffn_net.rs).

For each case: the PyTorch twin (torch_ffn.py) with random weights and biases, its `state_dict`
written with `safetensors.torch.save_file`, and an input pair (image, mask logits) with the
twin's output in `<case>.io.safetensors` (tensors `image`, `seed`, `output`); cases.json lists
the cases with EM Studio's FFN settings.

Reference: torch (version pinned in scripts/golden/requirements-torch.txt).
Usage: python3 scripts/golden/gen_ffn_net.py
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ffn import ConvStack3D  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "nets", "tests", "golden", "ffn")

# name, depth, features, fov (x, y, z), deltas (x, y, z), batch
CASES = [
    ("small", 3, 4, (9, 7, 5), (2, 2, 1), 2),
    ("one_module", 1, 6, (5, 5, 5), (1, 1, 1), 1),
    ("light_shape", 4, 16, (17, 17, 17), (4, 4, 4), 1),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(2027)
    listing = []
    for name, depth, features, fov, deltas, batch in CASES:
        net = ConvStack3D(depth, features)
        with torch.no_grad():
            for pname, p in net.named_parameters():
                scale = 0.2 if pname.endswith("weight") else 0.1
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
        shape = (batch, 1, fov[2], fov[1], fov[0])
        image = torch.randn(shape, generator=gen)
        seed = torch.randn(shape, generator=gen) * 2.0
        with torch.no_grad():
            output = net(image, seed)
        save_file(net.state_dict(), os.path.join(OUT, f"{name}.safetensors"))
        save_file(
            {"image": image.contiguous(), "seed": seed.contiguous(), "output": output.contiguous()},
            os.path.join(OUT, f"{name}.io.safetensors"),
        )
        listing.append(
            {
                "name": name,
                "network": {
                    "depth": depth,
                    "features": features,
                    "fov": list(fov),
                    "deltas": list(deltas),
                },
            }
        )
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": listing}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
