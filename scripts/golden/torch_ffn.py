"""The PyTorch twin of EM Studio's flood-filling network (crates/nets/src/ffn/net.rs).

google/ffn's convstack_3d (ffn/training/models/convstack_3d.py) in PyTorch, with the parameter
names EM Studio's model file uses, so a `state_dict` saved with `safetensors.torch.save_file`
imports with `FfnModelFile::import_safetensors` (no `emstudio ffn import` command yet): image and mask logits in (2 channels, image first), two
3x3x3 convolutions, `depth - 1` residual modules (ReLU, conv, ReLU, conv, plus the input), ReLU,
a 1x1x1 convolution to one logit added to the input mask logits. SAME padding; Xavier-uniform
weights and zero biases as tf-slim's defaults.

Used by gen_ffn_net.py (golden import fixtures) and bench_ffn.py (the speed reference).
"""

import torch
from torch import nn
from torch.nn import functional as F

PRESETS = {
    "light": dict(depth=4, features=16, fov=(17, 17, 17), deltas=(4, 4, 4)),
    "anisotropic": dict(depth=9, features=32, fov=(33, 33, 17), deltas=(8, 8, 4)),
    "isotropic": dict(depth=12, features=32, fov=(33, 33, 33), deltas=(8, 8, 8)),
}


def conv(cin, cout, k):
    c = nn.Conv3d(cin, cout, k, padding=k // 2)
    nn.init.xavier_uniform_(c.weight)
    nn.init.zeros_(c.bias)
    return c


class Residual(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.a = conv(f, f, 3)
        self.b = conv(f, f, 3)

    def forward(self, x):
        return self.b(F.relu(self.a(F.relu(x)))) + x


class ConvStack3D(nn.Module):
    def __init__(self, depth=9, features=32):
        super().__init__()
        self.conv0_a = conv(2, features, 3)
        self.conv0_b = conv(features, features, 3)
        self.residual = nn.ModuleList([Residual(features) for _ in range(depth - 1)])
        self.conv_lom = conv(features, 1, 1)

    def forward(self, image, seed):
        """image, seed: [b, 1, z, y, x] (normalised image, mask logits) -> new mask logits."""
        net = self.conv0_b(F.relu(self.conv0_a(torch.cat([image, seed], 1))))
        for m in self.residual:
            net = m(net)
        return seed + self.conv_lom(F.relu(net))


def soft_bce(logits, target):
    """Mean sigmoid cross-entropy against soft targets (google/ffn's loss)."""
    return F.binary_cross_entropy_with_logits(logits, target)
