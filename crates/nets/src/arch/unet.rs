//! U-Net (Ronneberger et al. 2015) with batch norm: `depth` levels of two 3×3 conv blocks,
//! 2×2 max pooling down, 2×2 transposed convolutions up, skip connections by concatenation.
//! Widths double per level from `base_width` (capped at 16 × base). Input height and width
//! must be multiples of 2^depth (the tiler picks such tiles).

use super::blocks::{head, ConvBnRelu, Up};
use super::{ArchError, NetIo, NetSpec, SegNet};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// U-Net settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Down-sampling levels (1–8).
    pub depth: usize,
    /// Channels of the first level.
    pub base_width: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            depth: 4,
            base_width: 16,
        }
    }
}

/// Two 3×3 conv blocks.
#[derive(Module, Debug)]
struct DoubleConv {
    a: ConvBnRelu,
    b: ConvBnRelu,
}

impl DoubleConv {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            a: ConvBnRelu::new(cin, cout, device),
            b: ConvBnRelu::new(cout, cout, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.b.forward(self.a.forward(x))
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct UNet {
    down: Vec<DoubleConv>,
    bottom: DoubleConv,
    up: Vec<Up>,
    merge: Vec<DoubleConv>,
    pool: MaxPool2d,
    head: Conv2d,
}

impl UNetConfig {
    fn width(&self, level: usize) -> usize {
        self.base_width << level.min(4)
    }
}

impl NetSpec for UNetConfig {
    type Net = UNet;
    const NAME: &'static str = "unet";

    fn validate(&self) -> Result<(), ArchError> {
        if !(1..=8).contains(&self.depth) {
            return Err(ArchError::invalid("unet", "depth must be 1–8"));
        }
        if !(1..=256).contains(&self.base_width) {
            return Err(ArchError::invalid("unet", "base_width must be 1–256"));
        }
        Ok(())
    }

    fn build(&self, io: &NetIo, device: &Device) -> UNet {
        let mut down = Vec::new();
        let mut cin = io.in_channels;
        for level in 0..self.depth {
            down.push(DoubleConv::new(cin, self.width(level), device));
            cin = self.width(level);
        }
        let bottom = DoubleConv::new(cin, self.width(self.depth), device);
        let mut up = Vec::new();
        let mut merge = Vec::new();
        for level in (0..self.depth).rev() {
            up.push(Up::new(self.width(level + 1), self.width(level), device));
            merge.push(DoubleConv::new(
                2 * self.width(level),
                self.width(level),
                device,
            ));
        }
        UNet {
            down,
            bottom,
            up,
            merge,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            head: head(self.width(0), io.out_channels, device),
        }
    }

    fn size_multiple(&self) -> usize {
        1 << self.depth
    }
}

impl SegNet for UNet {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut x = x;
        for d in &self.down {
            let y = d.forward(x);
            x = self.pool.forward(y.clone());
            skips.push(y);
        }
        x = self.bottom.forward(x);
        for (u, m) in self.up.iter().zip(&self.merge) {
            let skip = skips.pop().expect("one skip per level");
            x = m.forward(Tensor::cat(vec![u.forward(x), skip], 1));
        }
        self.head.forward(x)
    }
}
