//! Canny edge detector on 2D images (per slice for volumes).
//!
//! A port of `skimage.feature.canny(image, sigma, low_threshold, high_threshold)` with its
//! defaults (`mode='constant'`, `cval=0`, no mask, thresholds in the units of the data),
//! computed in `f64` like skimage on a float64 image:
//!
//! 1. Gaussian smoothing with zero padding, divided by the same smoothing of an all-ones
//!    image plus `f64::EPSILON` (skimage's "bleed-over" correction near the border);
//! 2. Sobel gradients (`scipy.ndimage.sobel`, `reflect` border) and their magnitude;
//! 3. non-maximum suppression with bilinear interpolation along the gradient direction
//!    (skimage's `_nonmaximum_suppression_bilinear`), skipping the outermost pixel ring and
//!    pixels below `low_threshold` (which skimage passes as a C `float`, so we round it to
//!    `f32` too);
//! 4. hysteresis: 8-connected groups of surviving pixels that contain at least one pixel
//!    `≥ high_threshold`.
//!
//! Every step repeats skimage's arithmetic in the same order, so the outputs agree except
//! where a magnitude ties with a neighbour or a threshold to the last bit; the golden tests
//! (`canny_*` in `tests/golden_filters.rs`) require ≥ 99.9 % pixel agreement and we measure
//! 100 % on the fixtures. Output: 0/1.

use serde::{Deserialize, Serialize};

use super::common::reflect_index;
use super::gaussian::{separable_symmetric, Border};
use super::FilterError;
use crate::progress::NoProgress;

/// Canny parameters (skimage's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannyParams {
    /// Gaussian sigma in pixels (≥ 0).
    #[serde(default = "default_sigma")]
    pub sigma: f32,
    /// Lower hysteresis threshold on the gradient magnitude (data units; 0.1 is skimage's
    /// default for `[0, 1]` data, so scale by 255 for 8-bit values).
    #[serde(default = "default_low")]
    pub low_threshold: f32,
    /// Upper hysteresis threshold (≥ `low_threshold`).
    #[serde(default = "default_high")]
    pub high_threshold: f32,
}

fn default_sigma() -> f32 {
    1.0
}

fn default_low() -> f32 {
    0.1
}

fn default_high() -> f32 {
    0.2
}

impl Default for CannyParams {
    fn default() -> Self {
        Self {
            sigma: 1.0,
            low_threshold: 0.1,
            high_threshold: 0.2,
        }
    }
}

impl CannyParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), FilterError> {
        super::gaussian::validate_sigma("canny", "sigma", self.sigma)?;
        let (lo, hi) = (self.low_threshold, self.high_threshold);
        if !(lo.is_finite() && hi.is_finite() && lo >= 0.0) {
            return Err(FilterError::invalid(
                "canny",
                format!("thresholds must be finite and ≥ 0 (got {lo}, {hi})"),
            ));
        }
        if hi < lo {
            return Err(FilterError::invalid(
                "canny",
                format!("high_threshold {hi} is below low_threshold {lo}"),
            ));
        }
        Ok(())
    }
}

/// Canny edges of one image as 0/1; see the module docs.
pub fn canny_2d(
    image: ndarray::ArrayView2<'_, f32>,
    params: &CannyParams,
) -> Result<ndarray::Array2<f32>, FilterError> {
    params.validate()?;
    let (ny, nx) = image.dim();
    let src: Vec<f32> = image.iter().copied().collect();
    let out = canny_buffer(&src, ny, nx, params)?;
    Ok(
        ndarray::Array2::from_shape_vec((ny, nx), out)
            .expect("canny_buffer returns ny * nx values"),
    )
}

/// Canny edges of a C-order `ny × nx` image as 0/1.
pub(crate) fn canny_buffer(
    src: &[f32],
    ny: usize,
    nx: usize,
    p: &CannyParams,
) -> Result<Vec<f32>, FilterError> {
    let n = ny * nx;
    let mut out = vec![0f32; n];
    if n == 0 {
        return Ok(out);
    }
    let shape = [1, ny, nx];
    let img: Vec<f64> = src.iter().map(|&v| f64::from(v)).collect();

    // 1. Smoothing with bleed-over correction.
    let sigma = f64::from(p.sigma);
    let smoothed: Vec<f64> = if sigma > 1e-15 {
        let blur = |data: &[f64]| -> Result<Vec<f64>, FilterError> {
            super::gaussian::gaussian_buffer(
                data,
                shape,
                [0.0, sigma, sigma],
                Border::Constant(0.0),
                &mut NoProgress,
            )
        };
        let g = blur(&img)?;
        let b = blur(&vec![1.0; n])?;
        g.iter()
            .zip(&b)
            .map(|(g, b)| g / (b + f64::EPSILON))
            .collect()
    } else {
        img.iter().map(|g| g / (1.0 + f64::EPSILON)).collect()
    };

    // 2. Sobel gradients: isobel along y (axis 0), jsobel along x (axis 1).
    let isobel = sobel(&smoothed, ny, nx, 0)?;
    let jsobel = sobel(&smoothed, ny, nx, 1)?;
    let magnitude: Vec<f64> = isobel
        .iter()
        .zip(&jsobel)
        .map(|(i, j)| {
            let m = i * i;
            (m + j * j).sqrt()
        })
        .collect();

    // 3. Non-maximum suppression (border ring excluded: skimage's eroded mask).
    // skimage passes low_threshold as a C float; ours is already f32.
    let mut low = f64::from(p.low_threshold);
    if low == 0.0 {
        low = f64::from(1e-14f32);
    }
    let mut kept = vec![0f64; n];
    if ny >= 3 && nx >= 3 {
        for x in 1..ny - 1 {
            for y in 1..nx - 1 {
                let i = x * nx + y;
                let m = magnitude[i];
                if m < low || m.is_nan() {
                    continue;
                }
                let mag = |dx: isize, dy: isize| -> f64 {
                    magnitude[((x as isize + dx) as usize) * nx + (y as isize + dy) as usize]
                };
                let is_down = isobel[i] <= 0.0;
                let is_up = !is_down;
                let is_left = jsobel[i] <= 0.0;
                let is_right = !is_left;
                let cond1 = (is_up && is_right) || (is_down && is_left);
                let cond2 = (is_down && is_right) || (is_up && is_left);
                if !(cond1 || cond2) {
                    continue;
                }
                let ai = isobel[i].abs();
                let aj = jsobel[i].abs();
                let (w, n11, n12, n21, n22) = if cond1 {
                    if ai > aj {
                        (aj / ai, mag(1, 0), mag(1, 1), mag(-1, 0), mag(-1, -1))
                    } else {
                        (ai / aj, mag(0, 1), mag(1, 1), mag(0, -1), mag(-1, -1))
                    }
                } else if ai < aj {
                    (ai / aj, mag(0, 1), mag(-1, 1), mag(0, -1), mag(1, -1))
                } else {
                    (aj / ai, mag(-1, 0), mag(-1, 1), mag(1, 0), mag(1, -1))
                };
                let c_plus = n12 * w + n11 * (1.0 - w) <= m;
                if c_plus {
                    let c_minus = n22 * w + n21 * (1.0 - w) <= m;
                    if c_minus {
                        kept[i] = m;
                    }
                }
            }
        }
    }

    // 4. Hysteresis over 8-connected groups.
    let high = f64::from(p.high_threshold);
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..n {
        if kept[i] > 0.0 && kept[i] >= high && out[i] == 0.0 {
            out[i] = 1.0;
            stack.push(i);
            while let Some(j) = stack.pop() {
                let (jy, jx) = (j / nx, j % nx);
                for dy in -1isize..=1 {
                    for dx in -1isize..=1 {
                        let (yy, xx) = (jy as isize + dy, jx as isize + dx);
                        if yy < 0 || xx < 0 || yy as usize >= ny || xx as usize >= nx {
                            continue;
                        }
                        let k = yy as usize * nx + xx as usize;
                        if kept[k] > 0.0 && out[k] == 0.0 {
                            out[k] = 1.0;
                            stack.push(k);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `scipy.ndimage.sobel(img, axis)` (reflect border) of a 2D image: the derivative
/// `[-1, 0, 1]` along `axis`, then the smoothing `[1, 2, 1]` along the other axis.
fn sobel(img: &[f64], ny: usize, nx: usize, axis: usize) -> Result<Vec<f64>, FilterError> {
    let n = ny * nx;
    let mut d = vec![0f64; n];
    for y in 0..ny {
        for x in 0..nx {
            let (a, b) = if axis == 0 {
                (
                    img[reflect_index(y as isize - 1, ny) * nx + x],
                    img[reflect_index(y as isize + 1, ny) * nx + x],
                )
            } else {
                (
                    img[y * nx + reflect_index(x as isize - 1, nx)],
                    img[y * nx + reflect_index(x as isize + 1, nx)],
                )
            };
            // scipy's antisymmetric branch: x0·0 + (x₋₁ − x₁)·(−1).
            d[y * nx + x] = img[y * nx + x] * 0.0 - (a - b);
        }
    }
    let mut halves: [Option<Vec<f64>>; 3] = [None, None, None];
    halves[if axis == 0 { 2 } else { 1 }] = Some(vec![2.0, 1.0]);
    separable_symmetric(&d, [1, ny, nx], &halves, Border::Reflect, &mut NoProgress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_gives_closed_contour() {
        let (ny, nx) = (20, 20);
        let mut img = vec![0f32; ny * nx];
        for y in 5..15 {
            for x in 5..15 {
                img[y * nx + x] = 1.0;
            }
        }
        let p = CannyParams::default();
        let e = canny_buffer(&img, ny, nx, &p).unwrap();
        assert!(e.iter().sum::<f32>() > 20.0);
        assert_eq!(e[10 * nx + 10], 0.0);
        assert_eq!(e[0], 0.0);
    }

    #[test]
    fn tiny_and_flat_images() {
        let p = CannyParams::default();
        assert!(canny_buffer(&[], 0, 5, &p).unwrap().is_empty());
        assert_eq!(canny_buffer(&[1.0, 2.0], 1, 2, &p).unwrap(), vec![0.0, 0.0]);
        assert!(canny_buffer(&[3.0; 25], 5, 5, &p)
            .unwrap()
            .iter()
            .all(|&v| v == 0.0));
        let bad = CannyParams {
            low_threshold: 0.5,
            high_threshold: 0.1,
            ..p
        };
        assert!(bad.validate().is_err());
    }
}
