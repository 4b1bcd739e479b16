"""PyTorch twins of EM Studio's 2D CNNs (crates/nets/src/arch/*.rs).

Same layers, same attribute names, same forward pass, so a `state_dict` saved with
`safetensors.torch.save_file` imports into EM Studio (`emstudio import`, or
`ModelFile::import_safetensors`) and gives the same outputs. Used by gen_nets.py (golden
fixtures for the import) and bench_nets.py (side-by-side speed). Build one from the JSON
architecture settings EM Studio uses: `build({"arch": "unet", "depth": 4, "base_width": 16}, 1, 1)`.
"""

import torch
from torch import nn
from torch.nn import functional as F


class ConvBnRelu(nn.Module):
    """3×3 conv (no bias, padding 1) → batch norm → ReLU; stride 2 halves the size."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Up(nn.Module):
    """2×2 transposed conv, stride 2 (no bias) → batch norm → ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.a = ConvBnRelu(cin, cout)
        self.b = ConvBnRelu(cout, cout)

    def forward(self, x):
        return self.b(self.a(x))


class UNet(nn.Module):
    """unet.rs: widths base << min(level, 4), max pool down, transposed conv up, concat skips."""

    def __init__(self, depth, base_width, cin, cout):
        super().__init__()
        width = lambda level: base_width << min(level, 4)
        self.down = nn.ModuleList()
        c = cin
        for level in range(depth):
            self.down.append(DoubleConv(c, width(level)))
            c = width(level)
        self.bottom = DoubleConv(c, width(depth))
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(Up(width(level + 1), width(level)))
            self.merge.append(DoubleConv(2 * width(level), width(level)))
        self.head = nn.Conv2d(width(0), cout, 1)

    def forward(self, x):
        skips = []
        for d in self.down:
            y = d(x)
            x = F.max_pool2d(y, 2, 2)
            skips.append(y)
        x = self.bottom(x)
        for u, m in zip(self.up, self.merge):
            x = m(torch.cat([u(x), skips.pop()], 1))
        return self.head(x)


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = ConvBnRelu(c, c)
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(self.a(x))) + x)


class Unit(nn.Module):
    """Highway unit: T·H(x) + (1 − T)·x with T = σ(gate(x) − 1)."""

    def __init__(self, c):
        super().__init__()
        self.h1 = ConvBnRelu(c, c)
        self.h2 = ConvBnRelu(c, c)
        self.gate = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        t = torch.sigmoid(self.gate(x) - 1.0)
        return t * self.h2(self.h1(x)) + (1.0 - t) * x


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)


class DenseBlock(nn.Module):
    def __init__(self, c, layers, growth):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(c + i * growth, growth) for i in range(layers))
        self.transition = nn.Conv2d(c + layers * growth, c, 1)

    def forward(self, x):
        features = x
        for layer in self.layers:
            features = torch.cat([features, layer.conv(F.relu(layer.bn(features)))], 1)
        return F.relu(self.transition(features))


class QuarterResolution(nn.Module):
    """resnet.rs / highway.rs / densenet.rs: stem, two stride-2 downs, `middle` blocks, two ups."""

    def __init__(self, middle_name, middle, base_width, cin, cout):
        super().__init__()
        b = base_width
        self.stem = ConvBnRelu(cin, b)
        self.down1 = ConvBnRelu(b, 2 * b, stride=2)
        self.down2 = ConvBnRelu(2 * b, 4 * b, stride=2)
        self.middle_name = middle_name
        setattr(self, middle_name, nn.ModuleList(middle))
        self.up1 = Up(4 * b, 2 * b)
        self.up2 = Up(2 * b, b)
        self.head = nn.Conv2d(b, cout, 1)

    def forward(self, x):
        x = self.down2(self.down1(self.stem(x)))
        for block in getattr(self, self.middle_name):
            x = block(x)
        return self.head(self.up2(self.up1(x)))


def build(arch, cin, cout):
    """The network for EM Studio's architecture JSON (`ArchConfig`)."""
    kind = arch["arch"]
    b = arch["base_width"]
    if kind == "unet":
        return UNet(arch["depth"], b, cin, cout)
    if kind == "resnet":
        return QuarterResolution("blocks", [Residual(4 * b) for _ in range(arch["blocks"])], b, cin, cout)
    if kind == "highway":
        return QuarterResolution("units", [Unit(4 * b) for _ in range(arch["units"])], b, cin, cout)
    if kind == "densenet":
        blocks = [DenseBlock(4 * b, arch["layers"], arch["growth"]) for _ in range(arch["blocks"])]
        return QuarterResolution("blocks", blocks, b, cin, cout)
    raise ValueError(f"unknown architecture {kind!r}")
