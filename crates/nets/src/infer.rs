//! Tiled inference of any image size: the image is covered by overlapping tiles
//! ([`crate::tiling`]), tiles run through the network in batches, and their probabilities are
//! blended with weights that fall off towards shared edges, so the result has no seams. Tiles
//! are squares of a multiple of the architecture's size multiple; an image smaller than a tile
//! is padded by edge replication and cropped back.
//!
//! Neighbouring tiles overlap by a quarter of the tile ([`overlap_for`]). Near a tile's edge
//! the network sees zero padding where the image goes on, so its answer there is worse than
//! in the middle; the overlap lets the neighbour's middle outweigh it. Measured on EPFL
//! mitochondria (U-Net depth 4, slices 20–26, BENCHMARKS.md session 8): IoU 0.7985 with 256²
//! tiles overlapping by an eighth, 0.8044 by a quarter, 0.8102 with 512² tiles, the same as one
//! forward pass over the whole slice (0.8100). Hence also the 512² default tile.
//!
//! Optionally ([`InferOptions::views`]) every tile also runs flipped and transposed and the
//! predictions, mapped back, are averaged ("test-time augmentation"): the network's answer no
//! longer depends on the orientation of the section, which removes speckle and ragged borders at
//! the price of proportionally more forward passes.

use crate::arch::{ArchConfig, Net, SegNet};
use crate::loss::probabilities;
use crate::model::ModelHeader;
use crate::tiling::{plan_tiles, Stitcher, Tile, TilingError};
use burn::prelude::*;
use ndarray::{Array2, Array3, ArrayView3};

/// Tile and batch sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferOptions {
    /// Tile side (rounded down to the architecture's multiple).
    pub tile: usize,
    /// Tiles per forward pass.
    pub batch: usize,
    /// Orientations each tile is predicted in and averaged over: 1 (as is), 4 (and flipped
    /// left-right, up-down and both) or 8 (and all of those transposed: every 90° rotation and
    /// mirror image). Values in between round down to 1 or 4; transposed views need square
    /// tiles, so an image smaller than the tile in one direction only gets 4.
    pub views: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        Self {
            tile: 512,
            batch: 4,
            views: 1,
        }
    }
}

impl InferOptions {
    /// These options with the tile shrunk (never grown) until the largest buffer a 3×3
    /// convolution may need at full resolution fits `max_binding_bytes`, the device's largest
    /// storage-buffer binding (WebGPU's `maxStorageBufferBindingSize`, 128 MiB by default).
    /// The estimate is conservative: an im2col matrix of `9 × channels × tile² × batch` `f32`s
    /// for the widest full-resolution layer, kept under half the limit.
    pub fn fit_to_binding(self, arch: &ArchConfig, max_binding_bytes: u64) -> Self {
        let channels = match arch {
            ArchConfig::UNet(c) => c.base_width,
            ArchConfig::ResNet(c) => c.base_width,
            // Highway units compute the transform and the gate side by side.
            ArchConfig::Highway(c) => 2 * c.base_width,
            ArchConfig::DenseNet(c) => c.base_width + c.layers * c.growth,
        } as u64;
        let per_pixel = 9 * channels.max(1) * self.batch.max(1) as u64 * 4;
        let pixels = (max_binding_bytes / 2 / per_pixel).max(1);
        let side = (pixels as f64).sqrt() as usize;
        let m = arch.size_multiple();
        let tile = self.tile.min((side / m).max(1) * m).max(m);
        Self { tile, ..self }
    }
}

/// Pixels neighbouring tiles of side `tile` share: a quarter of the tile (at least 1, less
/// than half), so every pixel's blended answer is dominated by a tile that sees it away from
/// the tile's edge (module docs).
pub fn overlap_for(tile: usize) -> usize {
    (tile / 4).max(1).min(tile.saturating_sub(1) / 2)
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

/// How an image is cut into tiles for a network.
struct Layout {
    tiles: Vec<Tile>,
    overlap: usize,
    /// The rectangle every tile is padded to (small images: the image padded to a multiple).
    side: (usize, usize),
    views: usize,
}

impl Layout {
    fn of(
        arch: &ArchConfig,
        h: usize,
        w: usize,
        options: InferOptions,
    ) -> Result<Self, TilingError> {
        let m = arch.size_multiple();
        let tile = (options.tile / m).max(1) * m;
        let overlap = overlap_for(tile);
        let tiles = plan_tiles(h, w, tile, overlap)?;
        let side = (tile.min(h.div_ceil(m) * m), tile.min(w.div_ceil(m) * m));
        let views = match options.views {
            8.. if side.0 == side.1 => 8,
            4.. => 4,
            _ => 1,
        };
        Ok(Self {
            tiles,
            overlap,
            side,
            views,
        })
    }
}

/// The forward-pass work of predicting one image: how many tiles (orientations counted) of
/// which size run through the network. Speeds per network pixel compare engines that tile
/// differently (benchmarks), and users see what the device was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileWork {
    /// Tiles run, each orientation counted once.
    pub tiles: usize,
    /// Rows and columns of every tile.
    pub side: (usize, usize),
}

impl TileWork {
    /// Pixels that pass through the network.
    pub fn pixels(&self) -> u64 {
        (self.tiles * self.side.0 * self.side.1) as u64
    }
}

/// The [`TileWork`] of predicting a `height × width` image with `options`.
pub fn tile_work(
    arch: &ArchConfig,
    height: usize,
    width: usize,
    options: InferOptions,
) -> Result<TileWork, TilingError> {
    let l = Layout::of(arch, height, width, options)?;
    Ok(TileWork {
        tiles: l.tiles.len() * l.views,
        side: l.side,
    })
}

/// A tiled prediction in progress: [`TiledPrediction::next_input`] gives the next batch of
/// tiles as a network input, [`TiledPrediction::accept`] takes the network's probabilities for
/// it, [`TiledPrediction::finish`] blends the result. Splitting the loop this way lets
/// [`predict`] read results synchronously and [`predict_async`] await them (WebGPU in the
/// browser cannot read synchronously) with one implementation.
pub struct TiledPrediction<'a> {
    /// `channel, y, x`.
    image: ArrayView3<'a, f32>,
    normalization: crate::model::Normalization,
    tiles: Vec<Tile>,
    /// Orientations per tile (see [`InferOptions::views`]); work item `i` is tile
    /// `i / views` in orientation `i % views`.
    views: usize,
    batch: usize,
    side: (usize, usize),
    classes: usize,
    stitchers: Vec<Stitcher>,
    done: usize,
}

impl<'a> TiledPrediction<'a> {
    /// Plans the tiles of `image` (`channel, y, x`) for the model in `header`.
    pub fn new(
        header: &ModelHeader,
        image: ArrayView3<'a, f32>,
        options: InferOptions,
    ) -> Result<Self, TilingError> {
        let (channels, h, w) = image.dim();
        if header.io.in_channels != channels {
            return Err(TilingError::Channels {
                model: header.io.in_channels,
                image: channels,
            });
        }
        let Layout {
            tiles,
            overlap,
            side,
            views,
        } = Layout::of(&header.arch, h, w, options)?;
        let classes = header.io.out_channels;
        Ok(Self {
            image,
            normalization: header.normalization,
            tiles,
            views,
            batch: options.batch.max(1),
            side,
            classes,
            stitchers: (0..classes).map(|_| Stitcher::new(h, w, overlap)).collect(),
            done: 0,
        })
    }

    /// Work items (tile orientations) done and in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.tiles.len() * self.views)
    }

    /// Work items `[start, end)` of batch `k`: each tile with the orientation it runs in.
    fn batch_items(&self, k: usize) -> Vec<(Tile, View)> {
        let total = self.tiles.len() * self.views;
        let start = (k * self.batch).min(total);
        let end = (start + self.batch).min(total);
        (start..end)
            .map(|i| (self.tiles[i / self.views], View(i % self.views)))
            .collect()
    }

    /// The batch [`Self::accept`] expects next ([`Self::batches`] once all are done).
    fn next_batch(&self) -> usize {
        if self.done >= self.tiles.len() * self.views {
            self.batches()
        } else {
            self.done / self.batch
        }
    }

    /// The next batch of work items (the one [`Self::accept`] expects).
    fn chunk(&self) -> Vec<(Tile, View)> {
        self.batch_items(self.next_batch())
    }

    /// Batches the prediction takes in all (each [`Self::batch_input`]).
    pub fn batches(&self) -> usize {
        (self.tiles.len() * self.views).div_ceil(self.batch)
    }

    /// Batch `k`'s tiles, normalised, as values `[items, channels, side_y, side_x]` and that
    /// shape (empty past the last batch). Batches may be computed anywhere, in any order (the
    /// network worker's CPU helpers run them side by side), but are accepted in order.
    pub fn batch_input(&self, k: usize) -> (Vec<f32>, [usize; 4]) {
        let (side_y, side_x) = self.side;
        let norm = self.normalization;
        let channels = self.image.dim().0;
        let chunk = self.batch_items(k);
        // Sized by the tiles that exist, not by the batch asked for (`--batch 1000000`).
        let mut x = Vec::with_capacity(chunk.len() * channels * side_y * side_x);
        for &(t, view) in &chunk {
            for c in 0..channels {
                for qy in 0..side_y {
                    for qx in 0..side_x {
                        let (py, px) = view.source(qy, qx, self.side);
                        let y = t.y + py.min(t.height - 1);
                        let xx = t.x + px.min(t.width - 1);
                        x.push((self.image[[c, y, xx]] - norm.mean) / norm.std);
                    }
                }
            }
        }
        (x, [chunk.len(), channels, side_y, side_x])
    }

    /// The next batch of tiles, normalised, as a network input; `None` when all are done.
    pub fn next_input(&self, device: &Device) -> Option<Tensor<4>> {
        let (x, shape) = self.batch_input(self.next_batch());
        if shape[0] == 0 {
            return None;
        }
        Some(Tensor::<4>::from_data(TensorData::new(x, shape), device))
    }

    /// Adds the probabilities `[batch, classes, side, side]` of the next batch in order (the
    /// last [`Self::next_input`], or [`Self::batch_input`] of the batches in order).
    /// A result of the wrong size, or holding NaN or infinity anywhere, is an error: a
    /// prediction is never made of values the network did not really compute.
    pub fn accept(&mut self, probs: &[f32]) -> Result<(), TilingError> {
        let (side_y, side_x) = self.side;
        let classes = self.classes;
        let items = self.chunk();
        let expected = items.len() * classes * side_y * side_x;
        if probs.len() != expected {
            return Err(TilingError::Device(format!(
                "the network returned {} values for {} tile(s) of {side_y}×{side_x} with {classes} \
                 class(es), expected {expected}",
                probs.len(),
                items.len()
            )));
        }
        if let Some(bad) = probs.iter().position(|p| !p.is_finite()) {
            return Err(TilingError::NotFinite {
                value: probs[bad].to_string(),
                tile: self.done + bad / (classes * side_y * side_x),
            });
        }
        for (i, (t, view)) in items.iter().enumerate() {
            for (c, stitcher) in self.stitchers.iter_mut().enumerate() {
                let base = (i * classes + c) * side_y * side_x;
                let plane = &probs[base..base + side_y * side_x];
                // The output at network position q belongs to tile pixel `view.source(q)`.
                let mut values = vec![0.0; t.height * t.width];
                for qy in 0..side_y {
                    for qx in 0..side_x {
                        let (py, px) = view.source(qy, qx, self.side);
                        if py < t.height && px < t.width {
                            values[py * t.width + px] = plane[qy * side_x + qx];
                        }
                    }
                }
                stitcher.add(t, &values);
            }
        }
        self.done += items.len();
        Ok(())
    }

    /// The blended probabilities `[classes, h, w]`.
    pub fn finish(self) -> Array3<f32> {
        let (_, h, w) = self.image.dim();
        let mut out = Array3::<f32>::zeros((self.classes, h, w));
        for (c, s) in self.stitchers.into_iter().enumerate() {
            for (dst, v) in out
                .index_axis_mut(ndarray::Axis(0), c)
                .iter_mut()
                .zip(s.finish())
            {
                *dst = v;
            }
        }
        out
    }
}

/// One orientation of a tile: bit 0 mirrors left-right, bit 1 up-down, bit 2 transposes
/// (square tiles only). View 0 is the tile as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct View(usize);

impl View {
    /// The position in the (padded, `side`-sized) tile that the network sees at `(qy, qx)`.
    /// Each view is a bijection of the padded rectangle onto itself, so reading the input
    /// through it and writing the output back through it undoes the orientation.
    fn source(self, qy: usize, qx: usize, side: (usize, usize)) -> (usize, usize) {
        let (mut y, mut x) = if self.0 & 4 != 0 { (qx, qy) } else { (qy, qx) };
        if self.0 & 1 != 0 {
            x = side.1 - 1 - x;
        }
        if self.0 & 2 != 0 {
            y = side.0 - 1 - y;
        }
        (y, x)
    }
}

/// Probabilities `[classes, h, w]` of one image in `[0, 1]` (`channel, y, x`; normalised with
/// the model's statistics here). `progress(done, total)` is called after each batch of tiles.
/// Reads results synchronously: not on WebGPU in the browser (use [`predict_async`]).
pub fn predict(
    net: &Net,
    header: &ModelHeader,
    image: ArrayView3<'_, f32>,
    options: InferOptions,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Array3<f32>, TilingError> {
    let mut job = TiledPrediction::new(header, image, options)?;
    while let Some(input) = job.next_input(device) {
        let probs = probabilities(net.forward(input))
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| TilingError::Device(format!("{e:?}")))?;
        job.accept(&probs)?;
        let (done, total) = job.progress();
        progress(done, total);
    }
    Ok(job.finish())
}

/// Probabilities `[items, classes, h, w]` of one batch made by
/// [`TiledPrediction::batch_input`] (synchronous reads: not on WebGPU in the browser). The
/// caller checks `shape` against the model first: a mismatch panics inside the network.
pub fn forward_batch(
    net: &Net,
    values: Vec<f32>,
    shape: [usize; 4],
    device: &Device,
) -> Result<Vec<f32>, TilingError> {
    let input = Tensor::<4>::from_data(TensorData::new(values, shape), device);
    probabilities(net.forward(input))
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| TilingError::Device(format!("{e:?}")))
}

/// [`predict`] with asynchronous reads (any device, WebGPU in the browser included).
pub async fn predict_async(
    net: &Net,
    header: &ModelHeader,
    image: ArrayView3<'_, f32>,
    options: InferOptions,
    device: &Device,
) -> Result<Array3<f32>, TilingError> {
    let mut job = TiledPrediction::new(header, image, options)?;
    while let Some(input) = job.next_input(device) {
        let probs = probabilities(net.forward(input))
            .into_data_async()
            .await
            .map_err(|e| TilingError::Device(e.to_string()))?
            .try_into_vec::<f32>()
            .map_err(|e| TilingError::Device(format!("{e:?}")))?;
        job.accept(&probs)?;
    }
    Ok(job.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{unet::UNetConfig, ArchConfig, NetIo};
    use crate::model::{Normalization, Provenance};

    /// The larger of `worst` and `d`, where a NaN wins (`f32::max` returns the other operand,
    /// so a NaN difference would never raise the maximum).
    fn nan_max(worst: f32, d: f32) -> f32 {
        if d.is_nan() || d > worst {
            d
        } else {
            worst
        }
    }

    #[test]
    fn nan_max_keeps_a_nan() {
        assert_eq!([0.5, 2.0, 1.0].into_iter().fold(0.0, nan_max), 2.0);
        for nan_at in 0..3 {
            let mut ds = [0.5, 2.0, 1.0];
            ds[nan_at] = f32::NAN;
            let worst = ds.into_iter().fold(0.0, nan_max);
            assert!(worst.is_nan(), "NaN at {nan_at}: {worst}");
            let large = worst > 1e-3;
            assert!(!large, "a NaN difference counts as large");
        }
    }

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
        let image = ndarray::Array3::<f32>::zeros((1, 8, 8));
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
    fn neighbouring_tiles_share_a_quarter_of_the_tile() {
        assert_eq!(overlap_for(512), 128);
        assert_eq!(overlap_for(256), 64);
        // Small tiles still overlap, and never by half or more (plan_tiles refuses that).
        for tile in 3..40 {
            let o = overlap_for(tile);
            assert!(o >= 1 && o * 2 < tile, "tile {tile}: overlap {o}");
            assert!(plan_tiles(100, 70, tile, o).is_ok());
        }
    }

    #[test]
    fn tiles_shrink_to_fit_the_binding_limit() {
        let unet = ArchConfig::UNet(UNetConfig {
            depth: 4,
            base_width: 8,
        });
        let o = InferOptions {
            tile: 512,
            batch: 2,
            views: 1,
        };
        // 128 MiB: 9 × 8 channels × 2 tiles × 4 bytes = 576 bytes a pixel → 340² → 336.
        assert_eq!(o.fit_to_binding(&unet, 128 << 20).tile, 336);
        // A generous limit keeps the requested tile; a tiny one still leaves one multiple.
        assert_eq!(o.fit_to_binding(&unet, 1 << 40).tile, 512);
        assert_eq!(o.fit_to_binding(&unet, 1).tile, 16);
        let wide = ArchConfig::UNet(UNetConfig {
            depth: 4,
            base_width: 64,
        });
        assert!(o.fit_to_binding(&wide, 128 << 20).tile < 128);
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
    fn batches_computed_out_of_order_and_accepted_in_order_give_the_same_result() {
        // What the network worker's CPU helpers do: every batch's input is made up front,
        // computed in any order (here last first), and accepted in order.
        let device = Device::flex();
        let (header, net) = two_class_unet(&device, 5);
        let image = Array3::from_shape_fn((1, 41, 50), |(_, y, x)| {
            ((y * 5 + x * 11) % 19) as f32 / 18.0
        });
        let options = InferOptions {
            tile: 16,
            batch: 2,
            views: 4,
        };
        let alone = predict(
            &net,
            &header,
            image.view(),
            options,
            &device,
            &mut |_, _| {},
        )
        .expect("alone");
        let mut job = TiledPrediction::new(&header, image.view(), options).expect("plan");
        let batches = job.batches();
        assert_eq!(job.progress().1.div_ceil(2), batches);
        let outputs: Vec<Vec<f32>> = (0..batches)
            .rev()
            .map(|k| {
                let (values, shape) = job.batch_input(k);
                assert!(shape[0] >= 1 && shape[0] <= 2, "batch {k}: {shape:?}");
                forward_batch(&net, values, shape, &device).expect("probabilities")
            })
            .collect();
        assert_eq!(
            job.batch_input(batches).1[0],
            0,
            "nothing past the last batch"
        );
        for probs in outputs.iter().rev() {
            job.accept(probs).expect("accepted");
        }
        assert_eq!(job.finish(), alone, "bit for bit the result computed alone");
    }

    #[test]
    fn tiled_probabilities_are_seamless_and_one_tile_equals_a_forward_pass() {
        let device = Device::flex();
        let (header, net) = two_class_unet(&device, 9);
        let gray = Array2::from_shape_fn((37, 53), |(y, x)| ((y * 7 + x * 3) % 17) as f32 / 16.0);
        let image = gray.clone().insert_axis(ndarray::Axis(0));
        let mut calls = 0;
        let tiled = predict(
            &net,
            &header,
            image.view(),
            InferOptions {
                tile: 16,
                batch: 3,
                views: 1,
            },
            &device,
            &mut |d, t| {
                calls += 1;
                assert!(d <= t);
            },
        )
        .expect("tiled");
        assert_eq!(tiled.dim(), (2, 37, 53));
        let awaited = futures_lite::future::block_on(predict_async(
            &net,
            &header,
            image.view(),
            InferOptions {
                tile: 16,
                batch: 3,
                views: 1,
            },
            &device,
        ))
        .expect("async");
        assert_eq!(awaited, tiled, "the awaited path gives the same result");
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
            InferOptions {
                tile: 64,
                batch: 1,
                views: 1,
            },
            &device,
            &mut |_, _| {},
        )
        .expect("whole");
        let (ph, pw) = (40, 56);
        let padded: Vec<f32> = (0..ph)
            .flat_map(|y| (0..pw).map(move |x| (y.min(36), x.min(52))))
            .map(|(y, x)| (gray[[y, x]] - 0.5) / 0.25)
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

    /// A small untrained two-class U-Net (in inference mode). Its output depends on the
    /// orientation of the image, which is what averaging over views must cancel.
    fn two_class_unet(device: &Device, seed: u64) -> (ModelHeader, Net) {
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
        let net = header.arch.build_seeded(&header.io, device, seed).valid();
        (header, net)
    }

    fn run(net: &Net, header: &ModelHeader, image: &Array2<f32>, o: InferOptions) -> Array3<f32> {
        let device = Device::flex();
        let image = image.clone().insert_axis(ndarray::Axis(0));
        predict(net, header, image.view(), o, &device, &mut |_, _| {}).expect("predict")
    }

    #[test]
    fn averaging_over_views_makes_the_prediction_follow_rotations_and_mirrors() {
        let device = Device::flex();
        let (header, net) = two_class_unet(&device, 21);
        let gray = Array2::from_shape_fn((40, 40), |(y, x)| {
            ((y * 7 + x * 3 + y * x) % 23) as f32 / 22.0
        });
        let whole = |views| InferOptions {
            tile: 64,
            batch: 3,
            views,
        };
        let plain = run(&net, &header, &gray, whole(1));
        let eight = run(&net, &header, &gray, whole(8));
        // The transposed image, predicted with all eight views, is the transposed prediction.
        let transposed = run(&net, &header, &gray.t().to_owned(), whole(8));
        let mut rotations_differ = 0.0f32;
        let mut plain_vs_transposed = 0.0f32;
        let plain_t = run(&net, &header, &gray.t().to_owned(), whole(1));
        for c in 0..2 {
            for y in 0..40 {
                for x in 0..40 {
                    let d = (eight[[c, y, x]] - transposed[[c, x, y]]).abs();
                    assert!(d < 1e-4, "8 views: ({c},{y},{x}) differs by {d}");
                    rotations_differ = nan_max(
                        rotations_differ,
                        (plain[[c, y, x]] - eight[[c, y, x]]).abs(),
                    );
                    plain_vs_transposed = nan_max(
                        plain_vs_transposed,
                        (plain[[c, y, x]] - plain_t[[c, x, y]]).abs(),
                    );
                }
            }
        }
        // Without views the net is not symmetric (so the check above has teeth).
        assert!(plain_vs_transposed > 1e-3, "{plain_vs_transposed}");
        assert!(rotations_differ > 1e-4);
        // Four views: mirror images follow too.
        let four = run(&net, &header, &gray, whole(4));
        let mirrored = gray.slice(ndarray::s![.., ..;-1]).to_owned();
        let four_mirrored = run(&net, &header, &mirrored, whole(4));
        for y in 0..40 {
            for x in 0..40 {
                let d = (four[[1, y, x]] - four_mirrored[[1, y, 39 - x]]).abs();
                assert!(d < 1e-4, "4 views: ({y},{x}) differs by {d}");
            }
        }
        // Probabilities stay probabilities.
        for (a, b) in eight
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .zip(eight.index_axis(ndarray::Axis(0), 1))
        {
            assert!((a + b - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn views_multiply_the_work_and_rectangles_skip_transposes() {
        let device = Device::flex();
        let (header, _) = two_class_unet(&device, 1);
        let tall = ndarray::Array3::<f32>::zeros((1, 37, 53));
        let count = |views, tile| {
            TiledPrediction::new(
                &header,
                tall.view(),
                InferOptions {
                    tile,
                    batch: 2,
                    views,
                },
            )
            .expect("plan")
            .progress()
            .1
        };
        let tiles = count(1, 16);
        assert!(tiles > 1);
        assert_eq!(count(4, 16), 4 * tiles);
        assert_eq!(
            count(8, 16),
            8 * tiles,
            "square 16² tiles take all eight views"
        );
        assert_eq!(count(6, 16), 4 * tiles);
        // One padded 40 × 56 tile is not square: transposes are skipped.
        assert_eq!(count(8, 64), 4);
    }

    #[test]
    fn tile_work_counts_what_the_prediction_runs() {
        let device = Device::flex();
        let (header, _) = two_class_unet(&device, 1);
        let image = ndarray::Array3::<f32>::zeros((1, 37, 53));
        for (tile, views) in [(16, 1), (16, 8), (32, 4), (64, 8)] {
            let options = InferOptions {
                tile,
                batch: 3,
                views,
            };
            let job = TiledPrediction::new(&header, image.view(), options).expect("plan");
            let work = tile_work(&header.arch, 37, 53, options).expect("plan");
            assert_eq!(work.tiles, job.progress().1, "tile {tile}, views {views}");
            assert_eq!(work.side, job.side);
            let batch = job.next_input(&device).expect("a batch").dims();
            assert_eq!(
                (batch[2], batch[3]),
                work.side,
                "the network sees that side"
            );
        }
        let one = tile_work(
            &header.arch,
            37,
            53,
            InferOptions {
                tile: 64,
                batch: 1,
                views: 1,
            },
        )
        .expect("plan");
        assert_eq!((one.tiles, one.side, one.pixels()), (1, (40, 56), 40 * 56));
    }
}
