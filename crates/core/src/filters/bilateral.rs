//! Bilateral filter on 2D images (per slice for volumes).
//!
//! Matches OpenCV's `cv2.bilateralFilter(src_f32, d, sigmaColor, sigmaSpace)` (the 32-bit
//! float path, default `BORDER_REFLECT_101`; opencv-python-headless, pinned in
//! `scripts/golden/requirements.txt`), to about 1e-5 relative. Golden tests: `bilateral_*`
//! cases in `tests/golden_filters.rs`.
//!
//! Why not `skimage.restoration.denoise_bilateral`: in scikit-image 0.26 its spatial lookup
//! table is built on the grid `arange(-w//2, w//2 + 1)` (`w + 1` points per axis for odd `w`)
//! but read as a `w × w` table (`range_lut[kr * w + kc]`), so the spatial weights are
//! scrambled and asymmetric (verified against its output while writing this module); copying
//! that would shift edges. OpenCV's kernel is a plain bilateral filter:
//!
//! - window: `radius = d / 2` (`d = window`), or `round(1.5 · sigma_spatial)` when `d = 0`;
//!   at least 1. Only offsets with `√(dy² + dx²) ≤ radius` take part (a disc).
//! - spatial weight `exp(-r² / 2σs²)` (stored as `f32`), centre weight 1.
//! - range weight: a table of `4096 + 2` values of `exp(-v² / 2σr²)` at `v = i · (max − min)
//!   / 4096` (image min/max, per slice), read with linear interpolation at `|Δ| · 4096 /
//!   (max − min)`.
//! - result `(Σ w·v + centre) / (Σ w + 1)` in `f32`; an image with `max − min < f32::EPSILON`
//!   is returned unchanged. NaN neighbours are skipped, as OpenCV does.

use ndarray::{Array2, ArrayView2};

use super::common::reflect101_index;
use super::FilterError;
use serde::{Deserialize, Serialize};

/// Parameters of the bilateral filter (OpenCV's `d`, `sigmaColor`, `sigmaSpace`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BilateralParams {
    /// Spatial sigma in pixels (`sigmaSpace`), > 0.
    pub sigma_spatial: f32,
    /// Range sigma in intensity units of the data (`sigmaColor`), > 0; e.g. 20 for 8-bit EM.
    pub sigma_range: f32,
    /// Window diameter `d`: radius = `window / 2` (at least 1); 0 = `round(1.5 · sigma_spatial)`.
    #[serde(default)]
    pub window: usize,
}

/// Largest window radius accepted.
pub const MAX_BILATERAL_RADIUS: usize = 50;

impl BilateralParams {
    /// The window radius OpenCV uses for these parameters.
    pub fn radius(&self) -> usize {
        let r = if self.window == 0 {
            // cvRound: round half to even.
            (f64::from(self.sigma_spatial) * 1.5).round_ties_even() as usize
        } else {
            self.window / 2
        };
        r.max(1)
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), FilterError> {
        for (v, name) in [
            (self.sigma_spatial, "sigma_spatial"),
            (self.sigma_range, "sigma_range"),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(FilterError::invalid(
                    "bilateral",
                    format!("{name} must be a finite number > 0 (got {v})"),
                ));
            }
        }
        if self.sigma_spatial > 100.0 || self.radius() > MAX_BILATERAL_RADIUS {
            return Err(FilterError::invalid(
                "bilateral",
                format!(
                    "window radius {} is too large (at most {MAX_BILATERAL_RADIUS})",
                    self.radius()
                ),
            ));
        }
        Ok(())
    }
}

/// Bilateral filter of one image; see the module docs for the exact kernel.
pub fn bilateral_2d(
    image: ArrayView2<'_, f32>,
    params: &BilateralParams,
) -> Result<Array2<f32>, FilterError> {
    params.validate()?;
    let (ny, nx) = image.dim();
    let src: Vec<f32> = image.iter().copied().collect();
    let out = bilateral_buffer(&src, ny, nx, params);
    Ok(Array2::from_shape_vec((ny, nx), out)
        .expect("bilateral_buffer returns exactly ny * nx values"))
}

/// Bilateral filter of a C-order `ny × nx` image.
pub(crate) fn bilateral_buffer(
    src: &[f32],
    ny: usize,
    nx: usize,
    params: &BilateralParams,
) -> Vec<f32> {
    if src.is_empty() {
        return Vec::new();
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in src {
        if !v.is_nan() {
            lo = lo.min(f64::from(v));
            hi = hi.max(f64::from(v));
        }
    }
    // Also true when the image is all NaN (lo = inf, hi = -inf).
    if hi - lo < f64::from(f32::EPSILON) || hi < lo {
        return src.to_vec();
    }
    let radius = params.radius();
    let sigma_color = f64::from(params.sigma_range);
    let sigma_space = f64::from(params.sigma_spatial);
    let gauss_color = -0.5 / (sigma_color * sigma_color);
    let gauss_space = -0.5 / (sigma_space * sigma_space);

    // Range-weight table, exactly as OpenCV builds it.
    const BINS: usize = 1 << 12;
    let len = (hi - lo) as f32;
    let scale_index = BINS as f32 / len;
    let mut lut = vec![0f32; BINS + 2];
    let mut last = 1f32;
    for (i, e) in lut.iter_mut().enumerate() {
        if last > 0.0 {
            let val = f64::from(i as f32 / scale_index);
            *e = (val * val * gauss_color).exp() as f32;
            last = *e;
        }
    }

    // (value, next − value) pairs, so one lookup gives OpenCV's
    // `lut[i] + a·(lut[i+1] − lut[i])` with the same arithmetic.
    let table: Vec<(f32, f32)> = (0..=BINS).map(|i| (lut[i], lut[i + 1] - lut[i])).collect();
    let table: &[(f32, f32); BINS + 1] = table
        .as_slice()
        .try_into()
        .expect("the table has BINS + 1 entries");
    let has_nan = src.iter().any(|v| v.is_nan());
    // For whole-number data (8/16-bit images), the range weight of every possible |Δ|,
    // computed with exactly the arithmetic of the general path.
    let whole: Option<Vec<f32>> =
        (!has_nan && hi - lo <= 65535.0 && super::common::scan(src).is_u16()).then(|| {
            (0..=(hi - lo) as usize)
                .map(|d| {
                    let a = d as f32 * scale_index;
                    let idx = (a as i32 as usize).min(BINS);
                    let frac = a - idx as f32;
                    let (base, slope) = table[idx];
                    base + frac * slope
                })
                .collect()
        });

    // Spatial offsets (row-major, centre excluded) and weights.
    let r = radius as isize;
    let mut offsets: Vec<(isize, isize, f32)> = Vec::new();
    for i in -r..=r {
        for j in -r..=r {
            let d = ((i * i + j * j) as f64).sqrt();
            if d > radius as f64 || (i == 0 && j == 0) {
                continue;
            }
            offsets.push((i, j, (d * d * gauss_space).exp() as f32));
        }
    }

    // Padded copy (BORDER_REFLECT_101).
    let pw = nx + 2 * radius;
    let ph = ny + 2 * radius;
    let mut pad = vec![0f32; pw * ph];
    for py in 0..ph {
        let sy = reflect101_index(py as isize - r, ny);
        for px in 0..pw {
            let sx = reflect101_index(px as isize - r, nx);
            pad[py * pw + px] = src[sy * nx + sx];
        }
    }

    let mut out = vec![0f32; ny * nx];
    let mut sum = vec![0f32; nx];
    let mut wsum = vec![0f32; nx];
    let padi: Vec<i32> = if whole.is_some() {
        pad.iter().map(|&v| v as i32).collect()
    } else {
        Vec::new()
    };
    let start_of = |y: usize, dy: isize, dx: isize| -> usize {
        ((y + radius) as isize + dy) as usize * pw + (radius as isize + dx) as usize
    };
    let row_at = |y: usize, dy: isize, dx: isize| -> &[f32] {
        let start = start_of(y, dy, dx);
        &pad[start..start + nx]
    };
    let rowi_at = |y: usize, dy: isize, dx: isize| -> &[i32] {
        let start = start_of(y, dy, dx);
        &padi[start..start + nx]
    };
    for y in 0..ny {
        sum.fill(0.0);
        wsum.fill(0.0);
        let centre = &pad[(y + radius) * pw + radius..][..nx];
        if has_nan {
            for &(dy, dx, sw) in &offsets {
                let k = row_at(y, dy, dx);
                for j in 0..nx {
                    let val = k[j];
                    if val.is_nan() {
                        continue;
                    }
                    let rval = centre[j];
                    let w = if rval.is_nan() {
                        sw
                    } else {
                        let a = (val - rval).abs() * scale_index;
                        let idx = (a as i32 as usize).min(BINS);
                        let frac = a - idx as f32;
                        sw * (table[idx].0 + frac * table[idx].1)
                    };
                    wsum[j] += w;
                    sum[j] += val * w;
                }
            }
        } else {
            // Hot path: no NaN. Offsets four at a time keep the sums in registers; the
            // additions happen in the same order as one offset at a time.
            let weight = |val: f32, rval: f32| -> f32 {
                let a = (val - rval).abs() * scale_index;
                let idx = (a as i32 as usize).min(BINS);
                let frac = a - idx as f32;
                let (base, slope) = table[idx];
                base + frac * slope
            };
            let mut groups = offsets.chunks_exact(4);
            if let Some(t) = &whole {
                // Whole-number data: the weight depends only on the integer |Δ|, taken
                // from an integer copy (no float-to-int conversion in the loop).
                let last = t.len() - 1;
                let ci = &padi[(y + radius) * pw + radius..][..nx];
                for g in &mut groups {
                    let k: [&[f32]; 4] = [0, 1, 2, 3].map(|q| row_at(y, g[q].0, g[q].1));
                    let ki: [&[i32]; 4] = [0, 1, 2, 3].map(|q| rowi_at(y, g[q].0, g[q].1));
                    for j in 0..nx {
                        let c = ci[j];
                        let (mut ws, mut sm) = (wsum[j], sum[j]);
                        for q in 0..4 {
                            let d = (ki[q][j] - c).unsigned_abs() as usize;
                            let w = g[q].2 * t[d.min(last)];
                            ws += w;
                            sm += k[q][j] * w;
                        }
                        wsum[j] = ws;
                        sum[j] = sm;
                    }
                }
                for &(dy, dx, sw) in groups.remainder() {
                    let k = row_at(y, dy, dx);
                    let ki = rowi_at(y, dy, dx);
                    for j in 0..nx {
                        let d = (ki[j] - ci[j]).unsigned_abs() as usize;
                        let w = sw * t[d.min(last)];
                        wsum[j] += w;
                        sum[j] += k[j] * w;
                    }
                }
            } else {
                for g in &mut groups {
                    let k: [&[f32]; 4] = [0, 1, 2, 3].map(|q| row_at(y, g[q].0, g[q].1));
                    for j in 0..nx {
                        let rval = centre[j];
                        let (mut ws, mut sm) = (wsum[j], sum[j]);
                        for q in 0..4 {
                            let val = k[q][j];
                            let w = g[q].2 * weight(val, rval);
                            ws += w;
                            sm += val * w;
                        }
                        wsum[j] = ws;
                        sum[j] = sm;
                    }
                }
                for &(dy, dx, sw) in groups.remainder() {
                    let k = row_at(y, dy, dx);
                    for j in 0..nx {
                        let val = k[j];
                        let w = sw * weight(val, centre[j]);
                        wsum[j] += w;
                        sum[j] += val * w;
                    }
                }
            }
        }
        let o = &mut out[y * nx..(y + 1) * nx];
        for j in 0..nx {
            let c = centre[j];
            o[j] = if c.is_nan() {
                sum[j] / wsum[j]
            } else {
                (sum[j] + c) / (wsum[j] + 1.0)
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_rules() {
        let p = |s: f32, w: usize| BilateralParams {
            sigma_spatial: s,
            sigma_range: 10.0,
            window: w,
        };
        assert_eq!(p(2.0, 0).radius(), 3);
        assert_eq!(p(1.0, 0).radius(), 2); // cvRound(1.5) = 2
        assert_eq!(p(0.3, 0).radius(), 1);
        assert_eq!(p(2.0, 5).radius(), 2);
        assert_eq!(p(2.0, 4).radius(), 2);
        assert!(p(-1.0, 0).validate().is_err());
        assert!(p(2.0, 500).validate().is_err());
    }

    #[test]
    fn flat_and_empty_images() {
        let p = BilateralParams {
            sigma_spatial: 2.0,
            sigma_range: 10.0,
            window: 0,
        };
        let flat = Array2::<f32>::from_elem((4, 5), 3.0);
        assert_eq!(bilateral_2d(flat.view(), &p).unwrap(), flat);
        let empty = Array2::<f32>::zeros((0, 5));
        assert_eq!(bilateral_2d(empty.view(), &p).unwrap().dim(), (0, 5));
        let one = Array2::<f32>::from_shape_vec((1, 2), vec![0.0, 10.0]).unwrap();
        let out = bilateral_2d(one.view(), &p).unwrap();
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
