//! Building blocks shared by the architectures: 3×3 convolution + batch norm + ReLU, stride-2
//! down- and up-sampling, and the 1×1 head.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// 3×3 convolution (padding 1) → batch norm → ReLU, at stride 1 ([`ConvBnRelu::new`]) or
/// stride 2, halving height and width ([`down`]).
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBnRelu {
    /// `cin` → `cout` channels, 3×3, stride 1.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self::with_stride(cin, cout, 1, device)
    }
    fn with_stride(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// `cin` → `cout` channels at half resolution (3×3, stride 2).
pub fn down(cin: usize, cout: usize, device: &Device) -> ConvBnRelu {
    ConvBnRelu::with_stride(cin, cout, 2, device)
}

/// 2×2 transposed convolution with stride 2 → batch norm → ReLU: doubles height and width.
#[derive(Module, Debug)]
pub struct Up {
    conv: ConvTranspose2d,
    bn: BatchNorm,
}

impl Up {
    /// `cin` → `cout` channels at double resolution.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: ConvTranspose2dConfig::new([cin, cout], [2, 2])
                .with_stride([2, 2])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// A 1×1 convolution to the output channels (logits).
pub fn head(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [1, 1]).init(device)
}
