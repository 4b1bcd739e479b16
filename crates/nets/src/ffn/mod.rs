//! Flood-filling networks (FFN; Januszewski et al., Nature Methods 2018; reference code
//! google/ffn), the 3D neuron segmentation of UNI-EM's second workflow.
//!
//! - [`net`]: `convstack_3d`, the network (image patch + object-mask logits in, updated
//!   logits out, same field of view), its settings and presets ([`net::FfnConfig`]).
//! - [`file`]: the FFN model file (settings, normalisation, weights, optimiser state), and
//!   import of PyTorch weights from the twin in `scripts/golden/torch_ffn.py`.
//! - [`train`]: google/ffn's training loop (seeded field of view, soft targets, the "fixed"
//!   movement policy writing predictions back into the mask, permute/reflect augmentation,
//!   SGD or Adam with element-wise gradient clipping), and mask accuracy, precision, recall.
//! - [`seeds`]: where inference starts objects (google/ffn's `PolicyPeaks`).
//! - [`infer`]: the inference canvas (one object at a time from a seed, face-maximum moves,
//!   objects kept by size, never overwriting earlier ones).
//! - [`blocks`]: a stack segmented in blocks along z with overlap, the blocks' IDs reconciled
//!   by their overlap (for volumes whose canvas would not fit, and resumable runs).
//!
//! The training centres come from `emstudio_core::ffn_data` (partitions, balanced
//! coordinates). Arrays are indexed z, y, x; settings that google/ffn gives as x, y, z
//! (field of view, deltas) are x, y, z here too, and named so.

pub mod blocks;
pub mod file;
pub mod infer;
pub mod net;
pub mod seeds;
pub mod train;

/// `ln(p / (1 − p))`: probabilities to the logit space the object mask lives in.
pub fn logit(p: f64) -> f32 {
    (p / (1.0 - p)).ln() as f32
}
