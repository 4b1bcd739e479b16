//! EM Studio core: the data model and pure algorithms shared by the browser worker, the
//! companion server and the CLI. No I/O beyond bytes in and bytes out, no threads, no clocks:
//! it builds for `wasm32-unknown-unknown` and native alike.
//!
//! - [`volume`]: chunked 3D volumes (`u8`/`u16`/`u32`/`f32`, 1 or 3 channels) with voxel size.
//! - [`stack`]: decoding and encoding PNG/TIFF slice series and multi-page TIFF, with
//!   validation that names the offending file.
//! - [`render`]: slices to RGBA for display; stable label colours.
//! - [`filters`]: 2D/3D image filters (Gaussian, median, bilateral, CLAHE, unsharp, Canny,
//!   thresholds, morphology).
//! - [`distance`]: Euclidean distance transform with anisotropic voxel size.
//! - [`labels`]: connected components, relabelling, size filter, z-linking, watershed.
//! - [`metrics`]: segmentation metrics (Rand, VI, Jaccard/Dice) and per-object errors.
//! - [`progress`]: progress reporting and cancellation for long kernels.
//! - [`neighborhood`]: 2D/3D connectivity.
//! - [`journal`]: the edit journal (every label edit as chunk diffs: undo, redo, bounded).
//! - [`edit_ops`]: painting and proofreading operations (brush, fill, merge, delete).
//! - [`edit_split`]: splitting a segment by a stroke (2D) or two seeds (3D) with a watershed.
//! - [`ffn_data`]: flood-filling network training data (partitions, balanced coordinates).

pub mod distance;
pub mod edit_ops;
pub mod edit_split;
pub mod ffn_data;
pub mod filters;
pub mod journal;
pub mod labels;
pub mod metrics;
pub mod neighborhood;
pub mod progress;
pub mod render;
pub mod slices;
pub mod stack;
pub mod volume;

pub use volume::{AnyVolume, DType, Shape, Volume, VoxelSize};
