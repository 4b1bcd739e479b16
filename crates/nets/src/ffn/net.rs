//! `convstack_3d`, google/ffn's flood-filling network (`ffn/training/models/convstack_3d.py`).
//!
//! Input: the normalised image patch and the current object mask as logits, two channels
//! `[b, 2, z, y, x]` (image first). Two 3×3×3 convolutions (ReLU between), then `depth − 1`
//! residual modules (ReLU, conv, ReLU, conv, plus the module's input), a ReLU and a 1×1×1
//! convolution to one logit, which is added to the input mask logits: the network predicts an
//! update of the mask. SAME padding throughout, so the output has the input's size (the field
//! of view, FOV). Weights start Glorot/Xavier-uniform, biases zero, as tf-slim's defaults
//! that google/ffn trains from.
//!
//! The parameter names (`conv0_a`, `conv0_b`, `residual.{i}.a`, `residual.{i}.b`, `conv_lom`)
//! are the PyTorch twin's (`scripts/golden/torch_ffn.py`), so its `state_dict` imports as is.

use burn::module::Param;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{Initializer, PaddingConfig3d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// The settings of a flood-filling network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FfnConfig {
    /// Residual depth: 2 convolutions plus `depth − 1` modules of 2 (google/ffn: 9 or 12).
    pub depth: usize,
    /// Feature channels of every convolution (google/ffn: 32).
    pub features: usize,
    /// The field of view, x, y, z (odd sizes).
    pub fov: [usize; 3],
    /// How far the field of view moves, x, y, z (at most half the FOV; 0 = never along that
    /// axis).
    pub deltas: [usize; 3],
}

/// A setting out of range (the message names it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("FFN settings: {0}")]
pub struct FfnConfigError(pub String);

/// The most residual modules + 1 a network may have.
pub const MAX_DEPTH: usize = 32;
/// The most feature channels.
pub const MAX_FEATURES: usize = 128;
/// The largest field of view along one axis.
pub const MAX_FOV: usize = 129;

/// The named presets, in the order a menu shows them.
pub const PRESETS: [&str; 3] = ["light", "anisotropic", "isotropic"];

impl FfnConfig {
    /// A named preset: "light" (depth 4, 16 features, FOV 17³, deltas 4: learns visibly within
    /// an hour of two CPU cores, see BENCHMARKS.md), "anisotropic" (UNI-EM's "Sparse Z": depth
    /// 9, FOV 33×33×17, deltas 8, 8, 4) and "isotropic" (google/ffn's FIB-25 model: depth 12,
    /// FOV 33³, deltas 8).
    pub fn preset(name: &str) -> Option<Self> {
        let (depth, features, fov, deltas) = match name {
            "light" => (4, 16, [17, 17, 17], [4, 4, 4]),
            "anisotropic" => (9, 32, [33, 33, 17], [8, 8, 4]),
            "isotropic" => (12, 32, [33, 33, 33], [8, 8, 8]),
            _ => return None,
        };
        Some(Self {
            depth,
            features,
            fov,
            deltas,
        })
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), FfnConfigError> {
        let bad = |m: String| Err(FfnConfigError(m));
        if !(1..=MAX_DEPTH).contains(&self.depth) {
            return bad(format!("depth is {}: 1 to {MAX_DEPTH}", self.depth));
        }
        if !(1..=MAX_FEATURES).contains(&self.features) {
            return bad(format!(
                "features is {}: 1 to {MAX_FEATURES}",
                self.features
            ));
        }
        for (axis, (&f, &d)) in ["x", "y", "z"]
            .iter()
            .zip(self.fov.iter().zip(&self.deltas))
        {
            if f % 2 == 0 || !(3..=MAX_FOV).contains(&f) {
                return bad(format!(
                    "the field of view along {axis} is {f}: an odd size from 3 to {MAX_FOV}"
                ));
            }
            if d > f / 2 {
                return bad(format!(
                    "the move along {axis} is {d}: at most half the field of view ({})",
                    f / 2
                ));
            }
        }
        Ok(())
    }

    /// The field of view as an array shape, z, y, x.
    pub fn fov_zyx(&self) -> [usize; 3] {
        [self.fov[2], self.fov[1], self.fov[0]]
    }

    /// The moves as z, y, x.
    pub fn deltas_zyx(&self) -> [usize; 3] {
        [self.deltas[2], self.deltas[1], self.deltas[0]]
    }

    /// The number of weights and biases.
    pub fn parameter_count(&self) -> u64 {
        let f = self.features as u64;
        let conv = |cin: u64, cout: u64, k: u64| k * cin * cout + cout;
        conv(2, f, 27) + conv(f, f, 27) * (1 + 2 * (self.depth as u64 - 1)) + conv(f, 1, 1)
    }

    /// The network with fresh weights on `device` (Xavier-uniform, zero biases). Seed the
    /// device first for reproducible weights (`train::seeded_init`).
    pub fn build(&self, device: &Device) -> ConvStack3d {
        let f = self.features;
        ConvStack3d {
            conv0_a: conv3(2, f, device),
            conv0_b: conv3(f, f, device),
            residual: (1..self.depth)
                .map(|_| Residual {
                    a: conv3(f, f, device),
                    b: conv3(f, f, device),
                })
                .collect(),
            conv_lom: conv(f, 1, 1, device),
        }
    }
}

fn conv3(cin: usize, cout: usize, device: &Device) -> Conv3d {
    conv(cin, cout, 3, device)
}

fn conv(cin: usize, cout: usize, k: usize, device: &Device) -> Conv3d {
    let mut c = Conv3dConfig::new([cin, cout], [k, k, k])
        .with_padding(PaddingConfig3d::Same)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
    c
}

/// One residual module: ReLU, conv, ReLU, conv, plus the input.
#[derive(Module, Debug)]
pub struct Residual {
    a: Conv3d,
    b: Conv3d,
}

/// The network (see the module doc).
#[derive(Module, Debug)]
pub struct ConvStack3d {
    conv0_a: Conv3d,
    conv0_b: Conv3d,
    residual: Vec<Residual>,
    conv_lom: Conv3d,
}

impl ConvStack3d {
    /// `image` and `seed` `[b, 1, z, y, x]` (normalised image, mask logits) → the new mask
    /// logits `[b, 1, z, y, x]` (the seed plus the predicted update).
    pub fn forward(&self, image: Tensor<5>, seed: Tensor<5>) -> Tensor<5> {
        let x = Tensor::cat(vec![image, seed.clone()], 1);
        let mut net = self.conv0_b.forward(relu(self.conv0_a.forward(x)));
        for m in &self.residual {
            let skip = net.clone();
            net = m.b.forward(relu(m.a.forward(relu(net)))) + skip;
        }
        seed + self.conv_lom.forward(relu(net))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor};

    #[test]
    fn presets_are_valid_and_counted() {
        for name in PRESETS {
            let c = FfnConfig::preset(name).expect(name);
            c.validate().expect(name);
            struct Count(u64);
            impl ModuleVisitor for Count {
                fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                    self.0 += p.lazy_shape().iter().map(|&d| d as u64).product::<u64>();
                }
            }
            let mut n = Count(0);
            c.build(&Device::flex()).visit(&mut n);
            assert_eq!(n.0, c.parameter_count(), "{name}");
        }
        // google/ffn's FIB-25 network: 24 convolutions of 32 features, about 0.5 M weights.
        assert_eq!(
            FfnConfig::preset("isotropic").unwrap().parameter_count(),
            27 * 2 * 32 + 32 + 23 * (27 * 32 * 32 + 32) + 33
        );
        assert!(FfnConfig::preset("deep").is_none());
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let base = FfnConfig::preset("light").unwrap();
        let cases = [
            (
                FfnConfig {
                    depth: 0,
                    ..base.clone()
                },
                "depth",
            ),
            (
                FfnConfig {
                    features: 500,
                    ..base.clone()
                },
                "features",
            ),
            (
                FfnConfig {
                    fov: [16, 17, 17],
                    ..base.clone()
                },
                "along x",
            ),
            (
                FfnConfig {
                    deltas: [4, 4, 9],
                    ..base.clone()
                },
                "move along z",
            ),
        ];
        for (c, words) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
        }
    }

    #[test]
    fn output_has_the_fov_and_is_seed_plus_update() {
        let device = Device::flex();
        let c = FfnConfig {
            depth: 2,
            features: 4,
            fov: [7, 5, 3],
            deltas: [2, 2, 1],
        };
        let net = crate::train::seeded_init(&device, 3, || c.build(&device));
        let image = Tensor::<5>::random(
            [2, 1, 3, 5, 7],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let seed = Tensor::<5>::full([2, 1, 3, 5, 7], crate::ffn::logit(0.05), &device);
        let out = net.forward(image.clone(), seed.clone());
        assert_eq!(out.dims(), [2, 1, 3, 5, 7]);
        // Zero biases and the last layer's weights zeroed: the update is 0, the output the seed.
        let mut zeroed = net.clone();
        zeroed.conv_lom.weight = Param::from_tensor(zeroed.conv_lom.weight.val().zeros_like());
        let same = zeroed.forward(image, seed.clone());
        let d = (same - seed).abs().max().into_scalar::<f32>();
        assert!(d == 0.0, "{d}");
        let _ = net.valid();
    }
}
