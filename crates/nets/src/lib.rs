//! EM Studio networks.
//!
//! The 2D CNNs and everything around them, on burn 0.22 with the backend chosen at run time
//! (`burn::tensor::Device`: flex CPU here and in wasm, wgpu/WebGPU, CUDA):
//!
//! - [`arch`]: U-Net, ResNet, Highway-Net, DenseNet behind one registry ([`arch::ArchConfig`],
//!   [`arch::Net`]); a new architecture is one file and one line (docs/plugins.md).
//! - [`loss`]: square, softmax / sigmoid cross-entropy, Dice, logistic, L1, with ignore masks.
//! - [`augment`]: flips, rotations, elastic, intensity, noise, blur, section defects.
//! - [`train`]: the hand-written training loop (Adam, schedules, validation, resume).
//! - [`model`]: the model file (architecture, weights, normalisation, provenance).
//! - [`infer`] and [`tiling`]: seamless tiled inference of any image size.
//! - [`card`]: model cards, a model scored on held-out pixels against a plain threshold.
//! - `native_device`: the CPU/wgpu/CUDA device picked by name in native programs.
//! - [`ffn`]: flood-filling networks for 3D neurons (network, model file, training).

pub mod arch;
pub mod augment;
pub mod card;
pub mod ffn;
pub mod infer;
pub mod loss;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod native_device;
pub mod tiling;
pub mod train;

/// The run-time device the networks use (re-exported so callers need no burn dependency).
pub use burn::prelude::Device;

/// The wgpu crate burn's WebGPU/wgpu runtime uses (adapter info and limits types).
#[cfg(any(feature = "webgpu", feature = "wgpu"))]
pub use burn::tensor::wgpu::wgpu;
