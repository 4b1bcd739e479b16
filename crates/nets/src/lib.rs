//! EM Studio networks.
//!
//! This crate will hold the 2D CNNs (U-Net, ResNet, Highway-Net, DenseNet), the flood-filling
//! network, losses, augmentation, training loops and model files, all on burn with the backend
//! chosen at run time. What is here now is the backend-independent part of tiled inference:
//! [`tiling`] plans overlapping tiles over an image of any size and the blending weights that
//! make the stitched result seamless.

pub mod tiling;
