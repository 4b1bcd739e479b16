//! DenseNet for dense prediction, UNI-EM's 2D "DenseNet": the ResNet layout
//! ([`super::resnet`]) with dense blocks (Huang et al. 2017) at quarter resolution. Each of a
//! block's `layers` layers is BN-ReLU-conv₃ₓ₃ producing `growth` channels that are concatenated
//! to its input; a 1×1 transition brings the block back to the working width. Input height
//! and width must be multiples of 4.

use super::blocks::{down, head, ConvBnRelu, Up};
use super::{ArchError, NetIo, NetSpec, SegNet};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// DenseNet settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseNetConfig {
    /// Dense blocks (1–16).
    pub blocks: usize,
    /// Layers per block (1–32).
    pub layers: usize,
    /// Channels each layer adds.
    pub growth: usize,
    /// Channels at full resolution (quarter resolution has 4×).
    pub base_width: usize,
}

impl Default for DenseNetConfig {
    fn default() -> Self {
        Self {
            blocks: 3,
            layers: 4,
            growth: 12,
            base_width: 16,
        }
    }
}

/// BN-ReLU-conv3×3 → `growth` channels.
#[derive(Module, Debug)]
struct DenseLayer {
    bn: BatchNorm,
    conv: Conv2d,
}

impl DenseLayer {
    fn new(cin: usize, growth: usize, device: &Device) -> Self {
        Self {
            bn: BatchNormConfig::new(cin).init(device),
            conv: Conv2dConfig::new([cin, growth], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
        }
    }
}

/// A dense block with its 1×1 transition.
#[derive(Module, Debug)]
struct DenseBlock {
    layers: Vec<DenseLayer>,
    transition: Conv2d,
}

impl DenseBlock {
    fn new(c: usize, layers: usize, growth: usize, device: &Device) -> Self {
        Self {
            layers: (0..layers)
                .map(|i| DenseLayer::new(c + i * growth, growth, device))
                .collect(),
            transition: Conv2dConfig::new([c + layers * growth, c], [1, 1]).init(device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut features = x;
        for l in &self.layers {
            let y = l.conv.forward(relu(l.bn.forward(features.clone())));
            features = Tensor::cat(vec![features, y], 1);
        }
        relu(self.transition.forward(features))
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct DenseNet {
    stem: ConvBnRelu,
    down1: ConvBnRelu,
    down2: ConvBnRelu,
    blocks: Vec<DenseBlock>,
    up1: Up,
    up2: Up,
    head: Conv2d,
}

impl NetSpec for DenseNetConfig {
    type Net = DenseNet;
    const NAME: &'static str = "densenet";

    fn validate(&self) -> Result<(), ArchError> {
        if !(1..=16).contains(&self.blocks) || !(1..=32).contains(&self.layers) {
            return Err(ArchError::invalid(
                "densenet",
                "blocks must be 1–16 and layers 1–32",
            ));
        }
        if !(1..=128).contains(&self.growth) || !(1..=256).contains(&self.base_width) {
            return Err(ArchError::invalid(
                "densenet",
                "growth must be 1–128 and base_width 1–256",
            ));
        }
        Ok(())
    }

    fn build(&self, io: &NetIo, device: &Device) -> DenseNet {
        let b = self.base_width;
        DenseNet {
            stem: ConvBnRelu::new(io.in_channels, b, device),
            down1: down(b, 2 * b, device),
            down2: down(2 * b, 4 * b, device),
            blocks: (0..self.blocks)
                .map(|_| DenseBlock::new(4 * b, self.layers, self.growth, device))
                .collect(),
            up1: Up::new(4 * b, 2 * b, device),
            up2: Up::new(2 * b, b, device),
            head: head(b, io.out_channels, device),
        }
    }

    fn size_multiple(&self) -> usize {
        4
    }
}

impl SegNet for DenseNet {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.down2.forward(self.down1.forward(self.stem.forward(x)));
        for b in &self.blocks {
            x = b.forward(x);
        }
        self.head.forward(self.up2.forward(self.up1.forward(x)))
    }
}
