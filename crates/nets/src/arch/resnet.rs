//! ResNet for dense prediction, as in UNI-EM's 2D "ResNet" (the pix2pix/CycleGAN residual
//! generator, Johnson et al. 2016): a 3×3 stem, two stride-2 down-sampling convolutions,
//! `blocks` residual blocks (3×3 conv-BN-ReLU, 3×3 conv-BN, identity skip) at quarter
//! resolution, two transposed-convolution up-samplings and a 1×1 head. The paper's settings
//! are 9 and 16 blocks. Input height and width must be multiples of 4.

use super::blocks::{conv_bn, down, head, ConvBnRelu, Up};
use super::{ArchError, NetIo, NetSpec, SegNet};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// ResNet settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Residual blocks (1–64).
    pub blocks: usize,
    /// Channels at full resolution (quarter resolution has 4×).
    pub base_width: usize,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        Self {
            blocks: 9,
            base_width: 16,
        }
    }
}

/// conv-BN-ReLU-conv-BN + x, then ReLU.
#[derive(Module, Debug)]
struct Residual {
    a: ConvBnRelu,
    conv: Conv2d,
    bn: BatchNorm,
}

impl Residual {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            a: ConvBnRelu::new(c, c, device),
            conv: Conv2dConfig::new([c, c], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(c).init(device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = conv_bn(&self.conv, &self.bn, self.a.forward(x.clone()));
        relu(y + x)
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct ResNet {
    stem: ConvBnRelu,
    down1: ConvBnRelu,
    down2: ConvBnRelu,
    blocks: Vec<Residual>,
    up1: Up,
    up2: Up,
    head: Conv2d,
}

impl NetSpec for ResNetConfig {
    type Net = ResNet;
    const NAME: &'static str = "resnet";

    fn validate(&self) -> Result<(), ArchError> {
        if !(1..=64).contains(&self.blocks) {
            return Err(ArchError::invalid("resnet", "blocks must be 1–64"));
        }
        if !(1..=256).contains(&self.base_width) {
            return Err(ArchError::invalid("resnet", "base_width must be 1–256"));
        }
        Ok(())
    }

    fn build(&self, io: &NetIo, device: &Device) -> ResNet {
        let b = self.base_width;
        ResNet {
            stem: ConvBnRelu::new(io.in_channels, b, device),
            down1: down(b, 2 * b, device),
            down2: down(2 * b, 4 * b, device),
            blocks: (0..self.blocks)
                .map(|_| Residual::new(4 * b, device))
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

impl SegNet for ResNet {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.down2.forward(self.down1.forward(self.stem.forward(x)));
        for b in &self.blocks {
            x = b.forward(x);
        }
        self.head.forward(self.up2.forward(self.up1.forward(x)))
    }
}
