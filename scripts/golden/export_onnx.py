#!/usr/bin/env python3
"""Exports the PyTorch twin of an EM Studio network (torch_nets.py) to ONNX, for the ONNX
Runtime Web side of `cargo xtask bench nets-browser`. Input `input` [batch, 1, h, w] with
dynamic batch and size, output `logits`.

Usage: export_onnx.py <arch JSON> <out.onnx>
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_nets import build  # noqa: E402

net = build(json.loads(sys.argv[1]), 1, 1).eval()
torch.onnx.export(
    net,
    (torch.randn(2, 1, 256, 256),),
    sys.argv[2],
    dynamo=False,
    input_names=["input"],
    output_names=["logits"],
    dynamic_axes={"input": {0: "batch", 2: "h", 3: "w"}, "logits": {0: "batch", 2: "h", 3: "w"}},
    opset_version=17,
)
print(sys.argv[2])
