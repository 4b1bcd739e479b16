//! CLAHE (contrast-limited adaptive histogram equalisation) in 2D (per slice) or 3D.
//!
//! A port of `skimage.exposure.equalize_adapthist(image, kernel_size, clip_limit, nbins)`
//! (scikit-image 0.26), step for step, so that on 8/16-bit data it agrees to float rounding
//! (golden tests: `clahe_*` cases in `tests/golden_filters.rs`, tolerance 1e-4 on 0–255):
//!
//! 1. intensities are mapped linearly from the image's `[min, max]` onto `0..=16383` and
//!    rounded half to even (skimage's `img_as_uint` + `rescale_intensity` + `np.round`; for
//!    whole-number data this is exactly skimage's result on the `u8`/`u16` image);
//! 2. values are binned with `bin = q / (1 + 16384 / nbins)`;
//! 3. the image is virtually padded (numpy `reflect`) by `k/2` before and up to the next
//!    multiple of `k` plus `⌈k/2⌉` after, and cut into contextual regions of `k` voxels per
//!    axis; each region's histogram is clipped at `max(1, ⌊clip_limit · kᵈ⌋)` counts with
//!    skimage's redistribution of the excess, and its cumulative sum is scaled to `0..=16383`;
//! 4. every voxel is mapped through the 2ᵈ neighbouring regions' tables and blended
//!    (bi/trilinearly, `f32` accumulation, truncated to an integer), and the result is
//!    rescaled from its own `[min, max]` to `[0, 1]`.
//!
//! We return that `[0, 1]` result mapped back onto the input's `[min, max]`, so 8-bit data
//! stays on a 0–255 scale (a flat image comes back unchanged).
//!
//! ## Parameters and Fiji
//!
//! UNI-EM uses Fiji's "Enhance Local Contrast (CLAHE)" settings *blocksize 127, histogram
//! bins 256, maximum slope 1.5*. We keep those names: `block_size` is skimage's
//! `kernel_size` (the contextual region edge, in voxels), `bins` is `nbins`, and
//! `max_slope` becomes `clip_limit = max_slope / bins`, so the clip level in counts is
//! `max_slope · (block voxels) / bins` — Fiji's definition of the slope limit. `max_slope = 0`
//! turns clipping off (plain AHE). Differences from Fiji that remain: Fiji equalises in a
//! window sliding with every pixel (or its "fast" interpolated variant with its own grid and
//! iterative clipping), and skimage's 14-bit binning with `bins = 256` uses 253 effective
//! bins; the output is therefore similar to Fiji's but not identical.
//!
//! Why not `kornia-imgproc`'s CLAHE: it matches OpenCV (a tile *count*, 256 fixed bins, `u8`
//! only), cannot express Fiji's block size / bins, requires Rust 1.89 (this workspace targets
//! 1.85) and brings rayon, nalgebra and getrandom 0.4 (which needs extra configuration on
//! `wasm32-unknown-unknown`).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::progress::Progress;

use super::common::{contiguous, from_vec3, reflect101_index, voxel_count, Ticker};
use super::FilterError;

/// skimage's internal grey levels (`NR_OF_GRAY = 2**14`).
const NR_OF_GRAY: usize = 1 << 14;

/// CLAHE parameters, named as in Fiji (see the module docs for the mapping to skimage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaheParams {
    /// Contextual region edge in voxels: `[y, x]` (each slice on its own) or `[z, y, x]` (3D).
    pub block_size: Vec<usize>,
    /// Histogram bins (2..=16384).
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Maximum slope of the cumulative histogram (Fiji); ≥ 0, 0 = no clipping.
    #[serde(default = "default_slope")]
    pub max_slope: f32,
}

fn default_bins() -> usize {
    256
}

fn default_slope() -> f32 {
    1.5
}

impl Default for ClaheParams {
    /// UNI-EM's settings: 127 / 256 / 1.5, per slice.
    fn default() -> Self {
        Self {
            block_size: vec![127, 127],
            bins: 256,
            max_slope: 1.5,
        }
    }
}

/// Largest block edge accepted.
pub const MAX_CLAHE_BLOCK: usize = 4096;

impl ClaheParams {
    /// skimage's `clip_limit` for these parameters (`max_slope / bins`).
    pub fn clip_limit(&self) -> f64 {
        f64::from(self.max_slope) / self.bins as f64
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), FilterError> {
        if self.block_size.len() != 2 && self.block_size.len() != 3 {
            return Err(FilterError::invalid(
                "clahe",
                format!(
                    "block_size needs 2 ([y, x], per slice) or 3 ([z, y, x]) values, got {}",
                    self.block_size.len()
                ),
            ));
        }
        for &b in &self.block_size {
            if b == 0 || b > MAX_CLAHE_BLOCK {
                return Err(FilterError::invalid(
                    "clahe",
                    format!("block_size values must be in 1..={MAX_CLAHE_BLOCK} (got {b})"),
                ));
            }
        }
        if !(2..=NR_OF_GRAY).contains(&self.bins) {
            return Err(FilterError::invalid(
                "clahe",
                format!("bins must be in 2..={NR_OF_GRAY} (got {})", self.bins),
            ));
        }
        if !self.max_slope.is_finite() || self.max_slope < 0.0 {
            return Err(FilterError::invalid(
                "clahe",
                format!(
                    "max_slope must be a finite number ≥ 0 (got {})",
                    self.max_slope
                ),
            ));
        }
        Ok(())
    }
}

/// CLAHE of one image with `block_size` `[y, x]` (a 3-value block size uses its last two).
pub fn clahe_2d(
    image: ArrayView2<'_, f32>,
    params: &ClaheParams,
) -> Result<Array2<f32>, FilterError> {
    params.validate()?;
    let n = params.block_size.len();
    let kernel = [params.block_size[n - 2], params.block_size[n - 1]];
    let (ny, nx) = image.dim();
    let src: Vec<f32> = image.iter().copied().collect();
    let out = clahe_buffer(
        &src,
        &[ny, nx],
        &kernel,
        params.bins,
        params.clip_limit(),
        None,
    )?;
    Ok(Array2::from_shape_vec((ny, nx), out).expect("clahe_buffer returns ny * nx values"))
}

/// CLAHE of a volume: per slice when `block_size` has 2 values, in 3D when it has 3.
/// Reports per slice (2D) or once (3D).
pub fn clahe(
    volume: ArrayView3<'_, f32>,
    params: &ClaheParams,
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, FilterError> {
    params.validate()?;
    let (src, shape) = contiguous(&volume);
    if voxel_count(shape) == 0 {
        return Ok(from_vec3(src.into_owned(), shape));
    }
    let [nz, ny, nx] = shape;
    if params.block_size.len() == 3 {
        let mut ticker = Ticker::new(progress, nz as u64);
        let k = &params.block_size;
        let out = clahe_buffer(
            &src,
            &[nz, ny, nx],
            &[k[0], k[1], k[2]],
            params.bins,
            params.clip_limit(),
            Some(&mut ticker),
        )?;
        return Ok(from_vec3(out, shape));
    }
    let kernel = [params.block_size[0], params.block_size[1]];
    let plane = ny * nx;
    let mut out = Vec::with_capacity(src.len());
    let mut ticker = Ticker::new(progress, nz as u64);
    for z in 0..nz {
        let slice = &src[z * plane..(z + 1) * plane];
        out.extend(clahe_buffer(
            slice,
            &[ny, nx],
            &kernel,
            params.bins,
            params.clip_limit(),
            None,
        )?);
        ticker.tick()?;
    }
    Ok(from_vec3(out, shape))
}

/// `np.round` (half to even) of a value in `0..=16383`, without a libm call.
#[inline]
fn round_half_even(v: f64) -> usize {
    let i = v as usize;
    let frac = v - i as f64;
    if frac > 0.5 || (frac == 0.5 && i % 2 == 1) {
        i + 1
    } else {
        i
    }
}

/// skimage's `clip_histogram`, including its redistribution loop.
fn clip_histogram(hist: &mut [i64], clip: i64) {
    let nbins = hist.len() as i64;
    let mut n_excess: i64 = 0;
    for h in hist.iter_mut() {
        if *h > clip {
            n_excess += *h - clip;
            *h = clip;
        }
    }
    let bin_incr = n_excess.div_euclid(nbins);
    let upper = clip - bin_incr;
    for h in hist.iter_mut() {
        if *h < upper {
            n_excess -= bin_incr;
            *h += bin_incr;
        }
    }
    for h in hist.iter_mut() {
        if *h >= upper && *h < clip {
            n_excess += *h - clip;
            *h = clip;
        }
    }
    while n_excess > 0 {
        let prev = n_excess;
        for index in 0..hist.len() {
            let under = hist.iter().filter(|&&h| h < clip).count() as i64;
            let step = (under / n_excess).max(1) as usize;
            let mut added = 0i64;
            let mut i = index;
            while i < hist.len() {
                if hist[i] < clip {
                    hist[i] += 1;
                    added += 1;
                }
                i += step;
            }
            n_excess -= added;
            if n_excess <= 0 {
                break;
            }
        }
        if prev == n_excess {
            break;
        }
    }
}

/// skimage's `map_histogram(hist, 0, NR_OF_GRAY - 1, n_pixels)`.
fn map_histogram(hist: &[i64], n_pixels: usize) -> Vec<i64> {
    let max_val = (NR_OF_GRAY - 1) as f64;
    let scale = max_val / n_pixels as f64;
    let mut acc: i64 = 0;
    hist.iter()
        .map(|&h| {
            acc += h;
            let v = (acc as f64 * scale + 0.0).min(max_val);
            v as i64
        })
        .collect()
}

/// The CLAHE of a C-order image of 2 or 3 dims, returned on the input's `[min, max]` scale.
/// With a ticker, ticks once per plane of the first axis while blending.
pub(crate) fn clahe_buffer(
    src: &[f32],
    shape: &[usize],
    kernel: &[usize],
    nbins: usize,
    clip_limit: f64,
    mut ticker: Option<&mut Ticker<'_>>,
) -> Result<Vec<f32>, FilterError> {
    let ndim = shape.len();
    let total: usize = shape.iter().product();
    if total == 0 {
        return Ok(Vec::new());
    }
    let outer_plane = total / shape[0];
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in src {
        lo = lo.min(f64::from(v));
        hi = hi.max(f64::from(v));
    }
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return Ok(src.to_vec());
    }

    // 1-2: 14-bit levels, then bins.
    let bin_size = 1 + NR_OF_GRAY / nbins;
    let top = (NR_OF_GRAY - 1) as f64;
    let bins: Vec<u16> = src
        .iter()
        .map(|&v| {
            let t = (f64::from(v).clamp(lo, hi) - lo) / (hi - lo);
            let q = round_half_even(t * top + 0.0);
            (q / bin_size) as u16
        })
        .collect();

    // Strides of the source and geometry of the contextual regions.
    let mut strides = vec![1usize; ndim];
    for a in (0..ndim.saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    let ns_hist: Vec<usize> = (0..ndim).map(|a| shape[a].div_ceil(kernel[a])).collect();
    let n_regions: usize = ns_hist.iter().product();
    let kernel_elements: usize = kernel.iter().product();
    let clim: i64 = if clip_limit > 0.0 {
        ((clip_limit * kernel_elements as f64) as i64).max(1)
    } else {
        kernel_elements as i64
    };

    // 3: one lookup table per contextual region. Region j covers source indices
    // j·k .. (j+1)·k along each axis, reflected (numpy 'reflect') past the end.
    let maps: Vec<Vec<usize>> = (0..ndim)
        .map(|a| {
            (0..ns_hist[a] * kernel[a])
                .map(|i| reflect101_index(i as isize, shape[a]))
                .collect()
        })
        .collect();
    let mut luts: Vec<Vec<i64>> = Vec::with_capacity(n_regions);
    let mut hist = vec![0i64; nbins];
    for region in 0..n_regions {
        let mut j = [0usize; 3];
        let mut rem = region;
        for a in (0..ndim).rev() {
            j[a] = rem % ns_hist[a];
            rem /= ns_hist[a];
        }
        hist.fill(0);
        let mut idx = [0usize; 3];
        'voxels: loop {
            let mut off = 0;
            for a in 0..ndim {
                off += maps[a][j[a] * kernel[a] + idx[a]] * strides[a];
            }
            hist[bins[off] as usize] += 1;
            // Next voxel of the region (last axis fastest).
            let mut a = ndim;
            loop {
                if a == 0 {
                    break 'voxels;
                }
                a -= 1;
                idx[a] += 1;
                if idx[a] < kernel[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        clip_histogram(&mut hist, clim);
        luts.push(map_histogram(&hist, kernel_elements));
    }

    // 4: blend the neighbouring regions' mappings.
    let mut result = vec![0u16; total];
    let n_edges = 1usize << ndim;
    let mut pos = [0usize; 3];
    for (i, out) in result.iter_mut().enumerate() {
        if let Some(t) = ticker.as_deref_mut() {
            if i % outer_plane == outer_plane - 1 {
                t.tick()?;
            }
        }
        let mut rem = i;
        for a in (0..ndim).rev() {
            pos[a] = rem % shape[a];
            rem /= shape[a];
        }
        let mut block = [0usize; 3];
        let mut coeff = [0f64; 3];
        for a in 0..ndim {
            let p = pos[a] + kernel[a] / 2;
            block[a] = p / kernel[a];
            coeff[a] = (p % kernel[a]) as f64 / kernel[a] as f64;
        }
        let bin = bins[i] as usize;
        let mut acc = 0f32;
        for edge in 0..n_edges {
            // Edge bits: axis 0 most significant (np.ndindex order).
            let mut region = 0usize;
            let mut w = 1f64;
            let mut first = true;
            for a in (0..ndim).rev() {
                let e = (edge >> (ndim - 1 - a)) & 1;
                let c = if e == 1 { coeff[a] } else { 1.0 - coeff[a] };
                w = if first { c } else { w * c };
                first = false;
            }
            for a in 0..ndim {
                let e = (edge >> (ndim - 1 - a)) & 1;
                // map_array = pad(hist_maps, 1, 'edge'): index block + e - 1, clamped.
                let h = (block[a] + e).saturating_sub(1).min(ns_hist[a] - 1);
                region = region * ns_hist[a] + h;
            }
            acc += (luts[region][bin] as f64 * w) as f32;
        }
        *out = acc as u16;
    }

    // Rescale to [0, 1] by the result's own range, then onto the input's range.
    let rmin = result.iter().copied().min().map_or(0.0, f64::from);
    let rmax = result.iter().copied().max().map_or(0.0, f64::from);
    Ok(result
        .iter()
        .map(|&r| {
            let t = if rmax > rmin {
                (f64::from(r) - rmin) / (rmax - rmin)
            } else {
                f64::from(r).clamp(0.0, 1.0)
            };
            (lo + t * (hi - lo)) as f32
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn clip_histogram_matches_skimage() {
        // Values from skimage.exposure._adapthist.clip_histogram (which may drop counts).
        let mut h = vec![0i64, 50, 3, 0, 0, 7, 100, 1];
        clip_histogram(&mut h, 20);
        assert_eq!(h, vec![20; 8]);
        let mut h = vec![5i64, 0, 30, 2, 2, 0, 9, 1, 40, 3];
        clip_histogram(&mut h, 6);
        assert_eq!(h, vec![6; 10]);
    }

    #[test]
    fn validation_and_edge_cases() {
        let mut p = ClaheParams::default();
        assert!(p.validate().is_ok());
        p.bins = 1;
        assert!(p.validate().is_err());
        p = ClaheParams {
            block_size: vec![8],
            ..ClaheParams::default()
        };
        assert!(p.validate().is_err());
        let p = ClaheParams {
            block_size: vec![4, 4],
            ..ClaheParams::default()
        };
        let flat = Array3::<f32>::from_elem((2, 3, 3), 9.0);
        assert_eq!(clahe(flat.view(), &p, &mut NoProgress).unwrap(), flat);
        let empty = Array3::<f32>::zeros((0, 3, 3));
        assert_eq!(
            clahe(empty.view(), &p, &mut NoProgress).unwrap().dim(),
            (0, 3, 3)
        );
        let tiny = Array3::<f32>::from_shape_vec((1, 1, 2), vec![0.0, 255.0]).unwrap();
        let out = clahe(tiny.view(), &p, &mut NoProgress).unwrap();
        assert!(out.iter().all(|v| (0.0..=255.0).contains(v)));
    }
}
