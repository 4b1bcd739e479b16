//! Highway network for dense prediction, UNI-EM's 2D "Highway-Net": the ResNet layout
//! ([`super::resnet`]) with each residual block replaced by a highway unit (Srivastava et al.
//! 2015): `y = T ⊙ H(x) + (1 − T) ⊙ x` with transform gate `T = σ(conv₃ₓ₃(x))` and
//! `H` = conv-BN-ReLU-conv-BN-ReLU. The gate is offset by −1 (`T = σ(conv(x) − 1)`), as a gate
//! bias initialised at −1 would, so units begin close to the identity. Input height and width must be multiples of 4.

use super::blocks::{down, head, ConvBnRelu, Up};
use super::{ArchError, NetIo, NetSpec, SegNet};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

/// Highway-Net settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HighwayConfig {
    /// Highway units (1–64).
    pub units: usize,
    /// Channels at full resolution (quarter resolution has 4×).
    pub base_width: usize,
}

impl Default for HighwayConfig {
    fn default() -> Self {
        Self {
            units: 9,
            base_width: 16,
        }
    }
}

/// One highway unit.
#[derive(Module, Debug)]
struct Unit {
    h1: ConvBnRelu,
    h2: ConvBnRelu,
    gate: Conv2d,
}

impl Unit {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            h1: ConvBnRelu::new(c, c, device),
            h2: ConvBnRelu::new(c, c, device),
            gate: Conv2dConfig::new([c, c], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let t = sigmoid(self.gate.forward(x.clone()) - 1.0);
        let h = self.h2.forward(self.h1.forward(x.clone()));
        t.clone() * h + (t.neg() + 1.0) * x
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct Highway {
    stem: ConvBnRelu,
    down1: ConvBnRelu,
    down2: ConvBnRelu,
    units: Vec<Unit>,
    up1: Up,
    up2: Up,
    head: Conv2d,
}

impl NetSpec for HighwayConfig {
    type Net = Highway;
    const NAME: &'static str = "highway";

    fn validate(&self) -> Result<(), ArchError> {
        if !(1..=64).contains(&self.units) {
            return Err(ArchError::invalid("highway", "units must be 1–64"));
        }
        if !(1..=256).contains(&self.base_width) {
            return Err(ArchError::invalid("highway", "base_width must be 1–256"));
        }
        Ok(())
    }

    fn build(&self, io: &NetIo, device: &Device) -> Highway {
        let b = self.base_width;
        Highway {
            stem: ConvBnRelu::new(io.in_channels, b, device),
            down1: down(b, 2 * b, device),
            down2: down(2 * b, 4 * b, device),
            units: (0..self.units).map(|_| Unit::new(4 * b, device)).collect(),
            up1: Up::new(4 * b, 2 * b, device),
            up2: Up::new(2 * b, b, device),
            head: head(b, io.out_channels, device),
        }
    }

    fn size_multiple(&self) -> usize {
        4
    }
}

impl SegNet for Highway {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.down2.forward(self.down1.forward(self.stem.forward(x)));
        for u in &self.units {
            x = u.forward(x);
        }
        self.head.forward(self.up2.forward(self.up1.forward(x)))
    }
}
