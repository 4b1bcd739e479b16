//! The 2D segmentation networks and their registry.
//!
//! Every architecture lives in one file with a settings struct implementing [`NetSpec`] and a
//! burn module implementing [`SegNet`]; one line in [`register_nets!`] below adds it to
//! [`ArchConfig`] (the serialisable choice, `{"arch":"unet","depth":4,"base_width":16}`) and to
//! [`Net`] (the module that dispatches to it). `docs/plugins.md` walks through adding one.
//!
//! All networks map `[batch, in_channels, h, w]` to logits `[batch, out_channels, h, w]`;
//! `h` and `w` must be multiples of [`ArchConfig::size_multiple`].

pub mod blocks;
pub mod densenet;
pub mod highway;
pub mod resnet;
pub mod unet;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Input and output channels of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetIo {
    /// 1 (gray) or 3 (RGB).
    pub in_channels: usize,
    /// 1 (binary, sigmoid) or K ≥ 2 (classes, softmax).
    pub out_channels: usize,
}

/// A settings value that is out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchError {
    /// The message names the architecture and the parameter.
    #[error("{arch}: {message}")]
    Invalid {
        /// Architecture name.
        arch: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ArchError {
    /// An invalid-parameter error.
    pub fn invalid(arch: &'static str, message: impl Into<String>) -> Self {
        ArchError::Invalid {
            arch,
            message: message.into(),
        }
    }
}

/// The settings of one architecture: validation and construction.
pub trait NetSpec {
    /// The module it builds.
    type Net: SegNet;
    /// The `"arch"` tag in JSON.
    const NAME: &'static str;
    /// Checks the settings.
    fn validate(&self) -> Result<(), ArchError>;
    /// Builds the module with fresh weights on `device`.
    fn build(&self, io: &NetIo, device: &Device) -> Self::Net;
    /// Input height and width must be multiples of this.
    fn size_multiple(&self) -> usize;
}

/// A network's forward pass: `[b, in, h, w]` → logits `[b, out, h, w]`.
pub trait SegNet {
    /// Runs the network.
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;
}

/// Generates [`ArchConfig`] and [`Net`] from the list of architectures.
macro_rules! register_nets {
    ($($variant:ident($config:ty => $net:ty)),+ $(,)?) => {
        /// Which architecture, with its settings (JSON: `{"arch": "<name>", ...settings}`).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "arch", rename_all = "lowercase")]
        pub enum ArchConfig {
            $(
                #[doc = concat!("See [`", stringify!($config), "`].")]
                $variant($config),
            )+
        }

        /// A built network of any registered architecture.
        #[derive(Module, Debug)]
        #[allow(clippy::large_enum_variant)]
        pub enum Net {
            $(
                #[doc = concat!("See [`", stringify!($net), "`].")]
                $variant($net),
            )+
        }

        impl ArchConfig {
            /// The architecture's name (`"unet"`, ...).
            pub fn name(&self) -> &'static str {
                match self { $(ArchConfig::$variant(_) => <$config as NetSpec>::NAME,)+ }
            }
            /// Checks the settings.
            pub fn validate(&self) -> Result<(), ArchError> {
                match self { $(ArchConfig::$variant(c) => c.validate(),)+ }
            }
            /// Builds the network with fresh weights.
            pub fn build(&self, io: &NetIo, device: &Device) -> Net {
                match self { $(ArchConfig::$variant(c) => Net::$variant(c.build(io, device)),)+ }
            }
            /// Input height and width must be multiples of this.
            pub fn size_multiple(&self) -> usize {
                match self { $(ArchConfig::$variant(c) => c.size_multiple(),)+ }
            }
            /// Builds the network with fresh weights drawn from `seed`, all of them now
            /// (burn draws lazily, on first use), under [`crate::train::seeded_init`]: the
            /// weights depend on the seed alone, whatever else runs in the process.
            pub fn build_seeded(&self, io: &NetIo, device: &Device, seed: u64) -> Net {
                crate::train::seeded_init(device, seed, || {
                    let net = self.build(io, device);
                    let m = self.size_multiple();
                    let plain = device.clone().without_autodiff();
                    let _ = net
                        .valid()
                        .forward(Tensor::zeros([1, io.in_channels, m, m], &plain));
                    net
                })
            }
            /// Every architecture with its default settings (for menus and `--help`).
            pub fn all_defaults() -> Vec<ArchConfig> {
                vec![$(ArchConfig::$variant(<$config>::default()),)+]
            }
        }

        impl Net {
            /// Loads weights from a store into the network itself (the store's keys have no
            /// architecture prefix, as in a PyTorch `state_dict`).
            pub fn load_from_store<S: burn::store::ModuleStore>(
                &mut self,
                store: &mut S,
            ) -> Result<burn::store::ApplyResult, S::Error> {
                use burn::store::ModuleSnapshot;
                match self { $(Net::$variant(n) => n.load_from(store),)+ }
            }
            /// Writes the network's weights into a store (keys without an architecture prefix).
            pub fn save_to_store<S: burn::store::ModuleStore>(&self, store: &mut S) -> Result<(), S::Error> {
                use burn::store::ModuleSnapshot;
                match self { $(Net::$variant(n) => n.save_into(store),)+ }
            }
        }

        impl SegNet for Net {
            fn forward(&self, x: Tensor<4>) -> Tensor<4> {
                match self { $(Net::$variant(n) => n.forward(x),)+ }
            }
        }
    };
}

register_nets! {
    UNet(unet::UNetConfig => unet::UNet),
    ResNet(resnet::ResNetConfig => resnet::ResNet),
    Highway(highway::HighwayConfig => highway::Highway),
    DenseNet(densenet::DenseNetConfig => densenet::DenseNet),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_keeps_the_image_size_and_round_trips_as_json() {
        let device = Device::flex();
        let io = NetIo {
            in_channels: 1,
            out_channels: 2,
        };
        for mut arch in ArchConfig::all_defaults() {
            // Small versions, so the test is quick.
            match &mut arch {
                ArchConfig::UNet(c) => (c.depth, c.base_width) = (2, 4),
                ArchConfig::ResNet(c) => (c.blocks, c.base_width) = (2, 4),
                ArchConfig::Highway(c) => (c.units, c.base_width) = (2, 4),
                ArchConfig::DenseNet(c) => {
                    (c.blocks, c.layers, c.growth, c.base_width) = (1, 2, 4, 4)
                }
            }
            arch.validate().expect("valid");
            let json = serde_json::to_string(&arch).expect("json");
            assert!(
                json.starts_with(&format!("{{\"arch\":\"{}\"", arch.name())),
                "{json}"
            );
            assert_eq!(
                serde_json::from_str::<ArchConfig>(&json).expect("parse"),
                arch
            );
            let net = arch.build(&io, &device);
            let x = Tensor::<4>::zeros([2, 1, 16, 24], &device);
            assert_eq!(net.forward(x).dims(), [2, 2, 16, 24], "{}", arch.name());
        }
        let bad = ArchConfig::UNet(unet::UNetConfig {
            depth: 9,
            base_width: 4,
        });
        assert!(bad.validate().is_err());
    }
}
