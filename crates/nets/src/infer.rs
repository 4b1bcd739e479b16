//! Tiled inference of any image size: the image is covered by overlapping tiles
//! ([`crate::tiling`]), tiles run through the network in batches, and their probabilities are
//! blended with weights that fall off towards shared edges, so the result has no seams. Tiles
//! are squares of a multiple of the architecture's size multiple; an image smaller than a tile
//! is padded by edge replication and cropped back.

use crate::arch::{Net, SegNet};
use crate::loss::probabilities;
use crate::model::ModelHeader;
use crate::tiling::{plan_tiles, Stitcher, TilingError};
use burn::prelude::*;
use ndarray::{Array2, Array3, ArrayView2};

/// Tile and batch sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferOptions {
    /// Tile side (rounded down to the architecture's multiple).
    pub tile: usize,
    /// Tiles per forward pass.
    pub batch: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        Self {
            tile: 256,
            batch: 4,
        }
    }
}

/// The most likely class per pixel of probabilities `[classes, h, w]`.
pub fn argmax_classes(probabilities: &Array3<f32>) -> Array2<u32> {
    let (classes, h, w) = probabilities.dim();
    Array2::from_shape_fn((h, w), |(y, x)| {
        (0..classes)
            .max_by(|&a, &b| probabilities[[a, y, x]].total_cmp(&probabilities[[b, y, x]]))
            .unwrap_or(0) as u32
    })
}

/// Probabilities `[classes, h, w]` of one image in `[0, 1]` (`image` is normalised with the
/// model's statistics here). `progress(done, total)` is called after each batch of tiles.
pub fn predict(
    net: &Net,
    header: &ModelHeader,
    image: ArrayView2<'_, f32>,
    options: InferOptions,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Array3<f32>, TilingError> {
    if header.io.in_channels != 1 {
        return Err(TilingError::Channels {
            model: header.io.in_channels,
            image: 1,
        });
    }
    let (h, w) = image.dim();
    let m = header.arch.size_multiple();
    let tile = (options.tile / m).max(1) * m;
    let overlap = (tile / 8).max(1).min(tile.saturating_sub(1) / 2);
    let tiles = plan_tiles(h, w, tile, overlap)?;
    let classes = header.io.out_channels;
    let mut stitchers: Vec<Stitcher> = (0..classes).map(|_| Stitcher::new(h, w, overlap)).collect();
    let norm = header.normalization;
    // Every tile is padded to the same rectangle (small images: the image padded to a multiple).
    let side_y = tile.min(h.div_ceil(m) * m);
    let side_x = tile.min(w.div_ceil(m) * m);
    let batch = options.batch.max(1);
    for (done, chunk) in tiles.chunks(batch).enumerate() {
        let mut x = Vec::with_capacity(chunk.len() * side_y * side_x);
        for t in chunk {
            for py in 0..side_y {
                let y = t.y + py.min(t.height - 1);
                for px in 0..side_x {
                    let xx = t.x + px.min(t.width - 1);
                    x.push((image[[y, xx]] - norm.mean) / norm.std);
                }
            }
        }
        let input =
            Tensor::<4>::from_data(TensorData::new(x, [chunk.len(), 1, side_y, side_x]), device);
        let probs: Vec<f32> = probabilities(net.forward(input))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        for (i, t) in chunk.iter().enumerate() {
            for (c, stitcher) in stitchers.iter_mut().enumerate() {
                let base = (i * classes + c) * side_y * side_x;
                let values: Vec<f32> = (0..t.height)
                    .flat_map(|py| {
                        let row = base + py * side_x;
                        probs[row..row + t.width].iter().copied()
                    })
                    .collect();
                stitcher.add(t, &values);
            }
        }
        progress(((done + 1) * batch).min(tiles.len()), tiles.len());
    }
    let mut out = Array3::<f32>::zeros((classes, h, w));
    for (c, s) in stitchers.into_iter().enumerate() {
        for (dst, v) in out
            .index_axis_mut(ndarray::Axis(0), c)
            .iter_mut()
            .zip(s.finish())
        {
            *dst = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{unet::UNetConfig, ArchConfig, NetIo};
    use crate::model::{Normalization, Provenance};

    #[test]
    fn rgb_models_are_refused_for_gray_images() {
        let device = Device::flex();
        let header = ModelHeader {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 1,
                base_width: 2,
            }),
            io: NetIo {
                in_channels: 3,
                out_channels: 1,
            },
            normalization: Normalization::default(),
            provenance: Provenance::default(),
        };
        let net = header.arch.build(&header.io, &device);
        let image = ndarray::Array2::<f32>::zeros((8, 8));
        let err = predict(
            &net,
            &header,
            image.view(),
            InferOptions::default(),
            &device,
            &mut |_, _| {},
        )
        .expect_err("3-channel model");
        assert!(err.to_string().contains("3-channel input"), "{err}");
    }

    #[test]
    fn argmax_picks_the_most_likely_class_per_pixel() {
        let p =
            Array3::from_shape_vec((3, 1, 3), vec![0.7, 0.1, 0.2, 0.2, 0.8, 0.2, 0.1, 0.1, 0.6])
                .expect("shape");
        assert_eq!(
            argmax_classes(&p).into_raw_vec_and_offset().0,
            vec![0, 1, 2]
        );
    }

    #[test]
    fn tiled_probabilities_are_seamless_and_one_tile_equals_a_forward_pass() {
        let _turn = crate::train::tests::SEEDED.lock();
        let device = Device::flex();
        device.seed(9);
        let header = ModelHeader {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 2,
                base_width: 4,
            }),
            io: NetIo {
                in_channels: 1,
                out_channels: 2,
            },
            normalization: Normalization::default(),
            provenance: Provenance::default(),
        };
        let net = header.arch.build(&header.io, &device).valid();
        let image = Array2::from_shape_fn((37, 53), |(y, x)| ((y * 7 + x * 3) % 17) as f32 / 16.0);
        let mut calls = 0;
        let tiled = predict(
            &net,
            &header,
            image.view(),
            InferOptions { tile: 16, batch: 3 },
            &device,
            &mut |d, t| {
                calls += 1;
                assert!(d <= t);
            },
        )
        .expect("tiled");
        assert_eq!(tiled.dim(), (2, 37, 53));
        assert!(calls > 1);
        // Softmax over two classes sums to one everywhere, seams included.
        for (a, b) in tiled
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .zip(tiled.index_axis(ndarray::Axis(0), 1))
        {
            assert!((a + b - 1.0).abs() < 1e-4);
        }
        // One tile covering the whole (edge-padded) image equals a plain forward pass.
        let whole = predict(
            &net,
            &header,
            image.view(),
            InferOptions { tile: 64, batch: 1 },
            &device,
            &mut |_, _| {},
        )
        .expect("whole");
        let (ph, pw) = (40, 56);
        let padded: Vec<f32> = (0..ph)
            .flat_map(|y| (0..pw).map(move |x| (y.min(36), x.min(52))))
            .map(|(y, x)| (image[[y, x]] - 0.5) / 0.25)
            .collect();
        let direct: Vec<f32> = probabilities(net.forward(Tensor::<4>::from_data(
            TensorData::new(padded, [1, 1, ph, pw]),
            &device,
        )))
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32");
        for c in 0..2 {
            for y in 0..37 {
                for x in 0..53 {
                    let d = direct[(c * ph + y) * pw + x];
                    assert!((whole[[c, y, x]] - d).abs() < 1e-5, "({c},{y},{x})");
                }
            }
        }
    }
}
