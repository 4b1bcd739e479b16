//! Data augmentation for 2D training patches, each switchable: flips, transpose (with flips:
//! all eight 90° rotations/reflections), elastic deformation, brightness/contrast/gamma,
//! Gaussian noise and blur, and simulated section defects (a missing band, a misaligned part).
//!
//! A patch is an image in `[0, 1]` (`channel, y, x`: one gray or three RGB planes) with its
//! label (class per pixel) and weight (0 = ignore) of the same size; geometric changes move all
//! of them together (labels by nearest neighbour), intensity changes touch only the image and
//! treat every channel alike. Hand-written, because the usual libraries
//! (albumentations, imgaug) are Python; tested for shape/label invariants below.

use ndarray::{Array2, Array3, Axis};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which augmentations run, and how strong they are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random horizontal and vertical flips.
    pub flips: bool,
    /// Random transpose (with flips: every 90° rotation).
    pub rotations: bool,
    /// Elastic deformation: displacement amplitude in pixels (0 = off).
    pub elastic_pixels: f32,
    /// Brightness shift up to ± this (image range 0–1; 0 = off).
    pub brightness: f32,
    /// Contrast factor in `1 ± contrast` (0 = off).
    pub contrast: f32,
    /// Gamma in `[1/(1+g), 1+g]` (0 = off).
    pub gamma: f32,
    /// Gaussian noise with σ up to this (0 = off).
    pub noise: f32,
    /// Probability of a Gaussian blur with σ in 0.5–1.5.
    pub blur_probability: f32,
    /// Probability of a missing band (image set to its mean over a random band of rows).
    pub missing_probability: f32,
    /// Probability of a misalignment (rows below a random cut shifted sideways, labels too).
    pub misalign_probability: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            flips: true,
            rotations: true,
            elastic_pixels: 4.0,
            brightness: 0.1,
            contrast: 0.15,
            gamma: 0.2,
            noise: 0.03,
            blur_probability: 0.2,
            missing_probability: 0.05,
            misalign_probability: 0.05,
        }
    }
}

impl AugmentConfig {
    /// Everything off.
    pub fn none() -> Self {
        Self {
            flips: false,
            rotations: false,
            elastic_pixels: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            gamma: 0.0,
            noise: 0.0,
            blur_probability: 0.0,
            missing_probability: 0.0,
            misalign_probability: 0.0,
        }
    }
}

/// A training patch.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    /// Intensities in `[0, 1]`, `channel, y, x`.
    pub image: Array3<f32>,
    /// Class per pixel.
    pub label: Array2<u8>,
    /// Pixel weight (0 = ignore).
    pub weight: Array2<f32>,
}

/// Flips rows (`axis` 0) or columns (1).
fn flip(p: &mut Patch, axis: usize) {
    p.image.invert_axis(Axis(axis + 1));
    p.label.invert_axis(Axis(axis));
    p.weight.invert_axis(Axis(axis));
}

fn standard(p: Patch) -> Patch {
    Patch {
        image: p.image.as_standard_layout().to_owned(),
        label: p.label.as_standard_layout().to_owned(),
        weight: p.weight.as_standard_layout().to_owned(),
    }
}

fn gauss(rng: &mut impl Rng) -> f32 {
    // Box–Muller.
    let u: f32 = rng.random_range(1e-7f32..1.0);
    let v: f32 = rng.random_range(0.0f32..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// Smooth random displacement: a 4×4 grid of random vectors, bilinearly interpolated.
fn elastic(p: &Patch, amplitude: f32, rng: &mut impl Rng) -> Patch {
    let (channels, h, w) = p.image.dim();
    const G: usize = 4;
    let grid: Vec<(f32, f32)> = (0..G * G)
        .map(|_| (gauss(rng) * amplitude, gauss(rng) * amplitude))
        .collect();
    let at = |gy: f32, gx: f32| -> (f32, f32) {
        let (y0, x0) = (gy.floor() as usize, gx.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(G - 1), (x0 + 1).min(G - 1));
        let (fy, fx) = (gy - y0 as f32, gx - x0 as f32);
        let g = |y: usize, x: usize| grid[y * G + x];
        let lerp =
            |a: (f32, f32), b: (f32, f32), t: f32| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        lerp(
            lerp(g(y0, x0), g(y0, x1), fx),
            lerp(g(y1, x0), g(y1, x1), fx),
            fy,
        )
    };
    let mut out = p.clone();
    let scale_y = (G - 1) as f32 / (h.max(2) - 1) as f32;
    let scale_x = (G - 1) as f32 / (w.max(2) - 1) as f32;
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = at(y as f32 * scale_y, x as f32 * scale_x);
            let sy = (y as f32 + dy).clamp(0.0, (h - 1) as f32);
            let sx = (x as f32 + dx).clamp(0.0, (w - 1) as f32);
            // Image bilinear; label and weight nearest.
            let (y0, x0) = (sy.floor() as usize, sx.floor() as usize);
            let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
            let (fy, fx) = (sy - y0 as f32, sx - x0 as f32);
            let i = &p.image;
            for c in 0..channels {
                let top = i[[c, y0, x0]] + (i[[c, y0, x1]] - i[[c, y0, x0]]) * fx;
                let bottom = i[[c, y1, x0]] + (i[[c, y1, x1]] - i[[c, y1, x0]]) * fx;
                out.image[[c, y, x]] = top + (bottom - top) * fy;
            }
            let (ny, nx) = (sy.round() as usize, sx.round() as usize);
            out.label[[y, x]] = p.label[[ny, nx]];
            out.weight[[y, x]] = p.weight[[ny, nx]];
        }
    }
    out
}

fn blur(image: &Array3<f32>, sigma: f32) -> Array3<f32> {
    let mut out = image.clone();
    for (plane, mut target) in image.outer_iter().zip(out.outer_iter_mut()) {
        if let Ok(b) = emstudio_core::filters::gaussian::gaussian_2d(plane, [sigma, sigma]) {
            target.assign(&b);
        }
    }
    out
}

/// Applies the configured augmentations to a patch.
pub fn augment(p: Patch, config: &AugmentConfig, rng: &mut impl Rng) -> Patch {
    let mut p = p;
    if config.flips {
        if rng.random_bool(0.5) {
            flip(&mut p, 0);
        }
        if rng.random_bool(0.5) {
            flip(&mut p, 1);
        }
    }
    if config.rotations && rng.random_bool(0.5) && p.label.nrows() == p.label.ncols() {
        p.image.swap_axes(1, 2);
        p.label.swap_axes(0, 1);
        p.weight.swap_axes(0, 1);
    }
    let mut p = standard(p);
    if config.elastic_pixels > 0.0 {
        p = elastic(&p, config.elastic_pixels, rng);
    }
    if config.contrast > 0.0 || config.brightness > 0.0 {
        let c = 1.0 + rng.random_range(-1.0f32..=1.0) * config.contrast;
        let b = rng.random_range(-1.0f32..=1.0) * config.brightness;
        let mean = p.image.mean().unwrap_or(0.5);
        p.image
            .mapv_inplace(|v| ((v - mean) * c + mean + b).clamp(0.0, 1.0));
    }
    if config.gamma > 0.0 {
        let g = (1.0 + config.gamma).powf(rng.random_range(-1.0f32..=1.0));
        p.image.mapv_inplace(|v| v.max(0.0).powf(g));
    }
    if rng.random_bool(f64::from(config.blur_probability.clamp(0.0, 1.0))) {
        p.image = blur(&p.image, rng.random_range(0.5f32..1.5));
    }
    if config.noise > 0.0 {
        let s = rng.random_range(0.0..=config.noise);
        p.image.mapv_inplace(|v| v + gauss(rng) * s);
    }
    let (channels, h, w) = p.image.dim();
    if h > 4 && rng.random_bool(f64::from(config.missing_probability.clamp(0.0, 1.0))) {
        let band = rng.random_range(1..=h / 4);
        let start = rng.random_range(0..=h - band);
        let mean = p.image.mean().unwrap_or(0.5);
        p.image
            .slice_mut(ndarray::s![.., start..start + band, ..])
            .fill(mean);
    }
    if h > 2 && w > 8 && rng.random_bool(f64::from(config.misalign_probability.clamp(0.0, 1.0))) {
        let cut = rng.random_range(1..h);
        let shift = rng.random_range(1..=(w / 8).max(1)) as isize
            * if rng.random_bool(0.5) { 1 } else { -1 };
        for y in cut..h {
            let rows_i: Vec<Vec<f32>> = (0..channels)
                .map(|c| p.image.slice(ndarray::s![c, y, ..]).to_vec())
                .collect();
            let row_l: Vec<u8> = p.label.row(y).to_vec();
            let row_w: Vec<f32> = p.weight.row(y).to_vec();
            for x in 0..w {
                let sx = (x as isize - shift).clamp(0, w as isize - 1) as usize;
                for (c, row_i) in rows_i.iter().enumerate() {
                    p.image[[c, y, x]] = row_i[sx];
                }
                p.label[[y, x]] = row_l[sx];
                p.weight[[y, x]] = row_w[sx];
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A gray (`channels` 1) or RGB patch whose label is "first channel above 0.5"; the other
    /// channels are the first one inverted, so a channel that moved on its own would show.
    fn patch(channels: usize) -> Patch {
        let gray = Array2::from_shape_fn((32, 32), |(y, x)| ((y * 32 + x) % 97) as f32 / 96.0);
        let label = gray.mapv(|v| u8::from(v > 0.5));
        let image = Array3::from_shape_fn((channels, 32, 32), |(c, y, x)| {
            if c == 0 {
                gray[[y, x]]
            } else {
                1.0 - gray[[y, x]]
            }
        });
        Patch {
            weight: Array2::ones((32, 32)),
            image,
            label,
        }
    }

    #[test]
    fn geometry_moves_image_and_labels_together() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let config = AugmentConfig {
            flips: true,
            rotations: true,
            ..AugmentConfig::none()
        };
        for channels in [1, 3] {
            for _ in 0..16 {
                let p = augment(patch(channels), &config, &mut rng);
                // Flips and transposes keep the pixel ↔ label correspondence exactly, in
                // every channel.
                let first = p.image.index_axis(Axis(0), 0);
                assert!(first
                    .iter()
                    .zip(p.label.iter())
                    .all(|(&v, &l)| u8::from(v > 0.5) == l));
                for c in 1..channels {
                    let other = p.image.index_axis(Axis(0), c);
                    assert!(first.iter().zip(other.iter()).all(|(a, b)| a + b == 1.0));
                }
                assert_eq!(p.image.dim(), (channels, 32, 32));
            }
        }
    }

    #[test]
    fn everything_on_keeps_shapes_labels_and_range() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let config = AugmentConfig {
            blur_probability: 1.0,
            missing_probability: 1.0,
            misalign_probability: 1.0,
            ..AugmentConfig::default()
        };
        let original = patch(3);
        for _ in 0..8 {
            let p = augment(original.clone(), &config, &mut rng);
            assert_eq!(p.image.dim(), (3, 32, 32));
            assert!(p.label.iter().all(|&l| l <= 1));
            assert!(p.image.iter().all(|v| v.is_finite()));
            assert_ne!(p.image, original.image);
        }
        // Off means off.
        let same = augment(original.clone(), &AugmentConfig::none(), &mut rng);
        assert_eq!(same, original);
    }
}
