//! Overlapping tiles for inference on images of any size, with seamless blending.
//!
//! A net sees `tile × tile` patches; [`plan_tiles`] covers a `height × width` image with tiles
//! whose neighbours overlap by at least `overlap` pixels (the last tile in a row/column is
//! shifted back to end at the border instead of padding). [`blend_weight`] gives each pixel of a
//! tile a weight that falls linearly to near zero towards the tile edges that touch another
//! tile, so `Σ wᵢ·predᵢ / Σ wᵢ` has no seams. [`Stitcher`] does that accumulation.
//!
//! ```
//! use emstudio_nets::tiling::plan_tiles;
//! let tiles = plan_tiles(100, 300, 128, 16).unwrap();
//! assert!(tiles.iter().all(|t| t.y + t.height <= 100 && t.x + t.width <= 300));
//! ```

use serde::{Deserialize, Serialize};

/// One tile: top-left corner and size, in image pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tile {
    /// Top row.
    pub y: usize,
    /// Left column.
    pub x: usize,
    /// Rows (≤ tile size; smaller only when the image is).
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Invalid tiling parameters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TilingError {
    /// Tile size zero or overlap not smaller than half the tile.
    #[error(
        "tile size {tile} with overlap {overlap}: the overlap must be less than half the tile"
    )]
    BadTile {
        /// Tile size.
        tile: usize,
        /// Overlap.
        overlap: usize,
    },
    /// The model expects another number of input channels than the image has.
    #[error("the model takes {model}-channel input, the image has {image} channel(s)")]
    Channels {
        /// The model's input channels.
        model: usize,
        /// The image's channels.
        image: usize,
    },
    /// The device failed while computing or reading back a result.
    #[error("the compute device failed: {0}")]
    Device(String),
    /// The network computed NaN or infinity (e.g. weights or a normalisation that overflow).
    #[error(
        "the network's output holds {value} (tile {tile}): the model's weights or input \
         normalisation are broken, so no prediction was written"
    )]
    NotFinite {
        /// The first value that is not finite (`NaN`, `inf`).
        value: String,
        /// The work item (tile orientation) it came from.
        tile: usize,
    },
    /// Empty image.
    #[error("image of {height}×{width} pixels has nothing to tile")]
    EmptyImage {
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
}

fn starts(len: usize, tile: usize, overlap: usize) -> Vec<usize> {
    if len <= tile {
        return vec![0];
    }
    let stride = tile - overlap;
    let mut out: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|&s| s + tile < len)
        .collect();
    out.push(len - tile);
    out
}

/// Tiles of `tile × tile` covering a `height × width` image with at least `overlap` pixels shared
/// between neighbours.
pub fn plan_tiles(
    height: usize,
    width: usize,
    tile: usize,
    overlap: usize,
) -> Result<Vec<Tile>, TilingError> {
    if tile == 0 || overlap * 2 >= tile {
        return Err(TilingError::BadTile { tile, overlap });
    }
    if height == 0 || width == 0 {
        return Err(TilingError::EmptyImage { height, width });
    }
    let ys = starts(height, tile, overlap);
    let xs = starts(width, tile, overlap);
    Ok(ys
        .iter()
        .flat_map(|&y| {
            xs.iter().map(move |&x| Tile {
                y,
                x,
                height: tile.min(height),
                width: tile.min(width),
            })
        })
        .collect())
}

/// Weight of pixel `(ty, tx)` inside `tile` when blending: a linear ramp over `overlap` pixels
/// at edges that are not the image border, 1 elsewhere; never 0.
pub fn blend_weight(
    tile: &Tile,
    ty: usize,
    tx: usize,
    image: (usize, usize),
    overlap: usize,
) -> f32 {
    let ramp = |pos: usize, len: usize, at_start_border: bool, at_end_border: bool| -> f32 {
        let mut w = 1.0f32;
        if overlap > 0 {
            if !at_start_border {
                w = w.min((pos as f32 + 1.0) / (overlap as f32 + 1.0));
            }
            if !at_end_border {
                w = w.min((len - pos) as f32 / (overlap as f32 + 1.0));
            }
        }
        w
    };
    let wy = ramp(
        ty,
        tile.height,
        tile.y == 0,
        tile.y + tile.height >= image.0,
    );
    let wx = ramp(tx, tile.width, tile.x == 0, tile.x + tile.width >= image.1);
    wy * wx
}

/// Accumulates weighted tile predictions into a seamless full image.
#[derive(Debug, Clone)]
pub struct Stitcher {
    height: usize,
    width: usize,
    overlap: usize,
    sum: Vec<f32>,
    weight: Vec<f32>,
}

impl Stitcher {
    /// An empty accumulator for a `height × width` image.
    pub fn new(height: usize, width: usize, overlap: usize) -> Self {
        Self {
            height,
            width,
            overlap,
            sum: vec![0.0; height * width],
            weight: vec![0.0; height * width],
        }
    }

    /// Adds a tile's prediction (`tile.height * tile.width` values, row-major).
    pub fn add(&mut self, tile: &Tile, values: &[f32]) {
        assert_eq!(values.len(), tile.height * tile.width);
        for ty in 0..tile.height {
            for tx in 0..tile.width {
                let w = blend_weight(tile, ty, tx, (self.height, self.width), self.overlap);
                let i = (tile.y + ty) * self.width + tile.x + tx;
                self.sum[i] += w * values[ty * tile.width + tx];
                self.weight[i] += w;
            }
        }
    }

    /// The blended image.
    pub fn finish(self) -> Vec<f32> {
        self.sum
            .into_iter()
            .zip(self.weight)
            .map(|(s, w)| if w > 0.0 { s / w } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_parameters() {
        assert!(plan_tiles(10, 10, 0, 0).is_err());
        assert!(plan_tiles(10, 10, 8, 4).is_err());
        assert!(plan_tiles(0, 10, 8, 2).is_err());
    }

    proptest! {
        #[test]
        fn tiles_cover_everything_and_stitch_exactly(h in 1usize..90, w in 1usize..90, tile in 4usize..40, ov in 0usize..10) {
            prop_assume!(ov * 2 < tile);
            let tiles = plan_tiles(h, w, tile, ov).unwrap();
            let mut covered = vec![false; h * w];
            for t in &tiles {
                prop_assert!(t.y + t.height <= h && t.x + t.width <= w);
                for y in t.y..t.y + t.height { for x in t.x..t.x + t.width { covered[y * w + x] = true; } }
            }
            prop_assert!(covered.iter().all(|&c| c));
            // A prediction that is a function of the global position must stitch back exactly.
            let truth: Vec<f32> = (0..h * w).map(|i| (i % 97) as f32).collect();
            let mut s = Stitcher::new(h, w, ov);
            for t in &tiles {
                let vals: Vec<f32> = (0..t.height * t.width)
                    .map(|i| truth[(t.y + i / t.width) * w + t.x + i % t.width]).collect();
                s.add(t, &vals);
            }
            for (a, b) in s.finish().iter().zip(&truth) { prop_assert!((a - b).abs() < 1e-3); }
        }
    }
}
