//! Point operations and global statistics: invert, normalise / contrast stretch (min–max or
//! percentiles), unsharp mask, fixed threshold, Otsu threshold.
//!
//! References (golden tests in `tests/golden_filters.rs`):
//! - normalise: `skimage.exposure.rescale_intensity(x, in_range=(p_lo, p_hi),
//!   out_range=(out_min, out_max))` with `p = np.percentile(x, (low, high))` (numpy's
//!   default linear method), reproduced operation by operation in the same precisions
//!   (percentile interpolation in `f64`, the rescale in `f32`), so it agrees to 1 ulp;
//! - unsharp mask: `skimage.filters.unsharp_mask(x, radius, amount, preserve_range=True)`
//!   (optionally clipped, which with `[0, 1]` is its `preserve_range=False` on `[0, 1]` data);
//! - Otsu: `skimage.filters.threshold_otsu(x, nbins=256)`: exact on whole-number data (which
//!   skimage histograms with one bin per integer), within one bin on other floats;
//! - invert: `skimage.util.invert` on `u8` (`255 - x`) when `max = 255`;
//! - thresholds: `x > t` (OpenCV's `THRESH_BINARY`) and `x <= t` (`THRESH_BINARY_INV`).
//!
//! Masks are returned as `0.0` / `1.0`.

use serde::{Deserialize, Serialize};

use super::FilterError;

/// Inversion parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvertParams {
    /// `Some(m)`: `m - x` (255 for 8-bit data, like `skimage.util.invert` on `u8`);
    /// `None`: `min + max - x`, flipping the data within its own range.
    #[serde(default)]
    pub max: Option<f32>,
}

/// Contrast stretch parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeParams {
    /// Lower percentile (0 = minimum).
    #[serde(default)]
    pub low_percentile: f32,
    /// Upper percentile (100 = maximum).
    #[serde(default = "hundred")]
    pub high_percentile: f32,
    /// Value the lower percentile maps to.
    #[serde(default)]
    pub out_min: f32,
    /// Value the upper percentile maps to.
    #[serde(default = "one")]
    pub out_max: f32,
    /// Percentiles of each slice instead of the whole volume.
    #[serde(default)]
    pub per_slice: bool,
}

fn hundred() -> f32 {
    100.0
}

fn one() -> f32 {
    1.0
}

impl Default for NormalizeParams {
    /// Min–max onto `[0, 1]` over the whole volume.
    fn default() -> Self {
        Self {
            low_percentile: 0.0,
            high_percentile: 100.0,
            out_min: 0.0,
            out_max: 1.0,
            per_slice: false,
        }
    }
}

impl NormalizeParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), FilterError> {
        let (lo, hi) = (self.low_percentile, self.high_percentile);
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi && hi <= 100.0) {
            return Err(FilterError::invalid(
                "normalize",
                format!("percentiles must satisfy 0 ≤ low ≤ high ≤ 100 (got {lo}, {hi})"),
            ));
        }
        if !self.out_min.is_finite() || !self.out_max.is_finite() {
            return Err(FilterError::invalid(
                "normalize",
                "out_min and out_max must be finite",
            ));
        }
        Ok(())
    }
}

/// Unsharp mask parameters (`skimage.filters.unsharp_mask`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsharpParams {
    /// Gaussian sigma of the blur: `[y, x]` (per slice) or `[z, y, x]` (3D).
    pub radius: Vec<f32>,
    /// Strength: `x + (x - blur(x)) · amount`.
    #[serde(default = "one")]
    pub amount: f32,
    /// Clip the result to `[lo, hi]` (skimage clips float data to `[0, 1]` unless
    /// `preserve_range=True`); `None` = no clipping.
    #[serde(default)]
    pub clip: Option<[f32; 2]>,
}

/// Fixed threshold parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdParams {
    /// Threshold: output 1 where `x > value`.
    pub value: f32,
    /// Output 1 where `x <= value` instead.
    #[serde(default)]
    pub invert: bool,
}

/// Otsu threshold parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtsuParams {
    /// Output 1 where `x <= t` instead of `x > t`.
    #[serde(default)]
    pub invert: bool,
    /// One threshold per slice instead of one for the volume.
    #[serde(default)]
    pub per_slice: bool,
    /// Histogram bins for non-integer data (integer data use one bin per value).
    #[serde(default = "default_nbins")]
    pub nbins: usize,
}

fn default_nbins() -> usize {
    256
}

impl Default for OtsuParams {
    fn default() -> Self {
        Self {
            invert: false,
            per_slice: false,
            nbins: 256,
        }
    }
}

/// `max - x`, or `min + max - x` over `values` when `max` is `None`.
pub(crate) fn invert(values: &[f32], max: Option<f32>) -> Vec<f32> {
    let m = match max {
        Some(m) => m,
        None => {
            let (lo, hi) = finite_min_max(values);
            if lo > hi {
                return values.to_vec();
            }
            lo + hi
        }
    };
    values.iter().map(|&v| m - v).collect()
}

/// Smallest and largest finite value (`(inf, -inf)` when there is none).
pub(crate) fn finite_min_max(values: &[f32]) -> (f32, f32) {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi)
}

/// Order statistics of a block of values: a cumulative histogram for whole numbers in
/// `0..=65535` (one pass, no copy), otherwise a copy partitioned with `select_nth`.
enum OrderStats {
    /// `cum[v]` = number of values `<= v`.
    Hist(Vec<u64>),
    /// Copy of the values (partially reordered by each query).
    Select(Vec<f32>),
}

impl OrderStats {
    fn new(values: &[f32]) -> Self {
        let st = super::common::scan(values);
        if st.is_u16() {
            let mut cum = super::common::whole_histogram(values, st.hi.max(0.0) as usize);
            let mut acc = 0;
            for c in &mut cum {
                acc += *c;
                *c = acc;
            }
            OrderStats::Hist(cum)
        } else {
            OrderStats::Select(values.to_vec())
        }
    }

    /// The `k`-th smallest value (0-based, IEEE total order).
    fn kth(&mut self, k: usize) -> f32 {
        match self {
            OrderStats::Hist(cum) => cum.partition_point(|&c| c <= k as u64) as f32,
            OrderStats::Select(v) => *v.select_nth_unstable_by(k, f32::total_cmp).1,
        }
    }
}

/// `np.percentile(values, qs)` (linear method) of non-empty data, each as `f64`; `NaN`s for
/// empty data. Matches numpy 2.4 bit for bit on float32 data.
pub fn percentiles(values: &[f32], qs: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        return vec![f64::NAN; qs.len()];
    }
    let n = values.len();
    let mut stats = OrderStats::new(values);
    qs.iter()
        .map(|&q| {
            let quantile = q / 100.0;
            // numpy's 'linear' virtual index (checked against numpy 2.4 bit for bit).
            let vi = quantile * (n - 1) as f64;
            if vi >= (n - 1) as f64 {
                return f64::from(stats.kth(n - 1));
            }
            if vi < 0.0 {
                return f64::from(stats.kth(0));
            }
            let prev = vi.floor() as usize;
            let gamma = vi - vi.floor();
            let a = stats.kth(prev);
            let b = stats.kth(prev + 1);
            // numpy's _lerp: the difference in float32, the blend in float64.
            let diff = f64::from(b - a);
            if gamma >= 0.5 {
                f64::from(b) - diff * (1.0 - gamma)
            } else {
                f64::from(a) + diff * gamma
            }
        })
        .collect()
}

/// `rescale_intensity(x, in_range=(p_lo, p_hi), out_range=(out_min, out_max))` of float32
/// data, in skimage's precisions.
pub(crate) fn rescale_in_place(
    values: &mut [f32],
    p_lo: f64,
    p_hi: f64,
    out_min: f32,
    out_max: f32,
) {
    let (omin, omax) = (f64::from(out_min), f64::from(out_max));
    if p_lo != p_hi {
        let lo32 = p_lo as f32;
        let hi32 = p_hi as f32;
        let span = (p_hi - p_lo) as f32;
        let oscale = (omax - omin) as f32;
        let ooff = omin as f32;
        for v in values {
            let c = v.clamp(lo32.min(hi32), hi32.max(lo32));
            *v = ((c - lo32) / span) * oscale + ooff;
        }
    } else {
        // skimage: np.clip(image, omin, omax) when the input range is empty.
        let (a, b) = (out_min.min(out_max), out_min.max(out_max));
        for v in values {
            *v = v.clamp(a, b);
        }
    }
}

/// Contrast stretch of one block of values (a slice or the whole volume).
pub(crate) fn normalize_in_place(values: &mut [f32], p: &NormalizeParams) {
    if values.is_empty() {
        return;
    }
    let ps = percentiles(
        values,
        &[f64::from(p.low_percentile), f64::from(p.high_percentile)],
    );
    rescale_in_place(values, ps[0], ps[1], p.out_min, p.out_max);
}

/// Otsu threshold of integer-valued data (skimage's one-bin-per-integer histogram), exactly as
/// `skimage.filters.threshold_otsu` computes it (float32 counts, float64 means).
pub fn otsu_threshold_u8(values: &[u8]) -> u8 {
    let mut counts = [0u64; 256];
    for &v in values {
        counts[v as usize] += 1;
    }
    otsu_integer(&counts).map_or(values.first().copied().unwrap_or(0), |t| t as u8)
}

/// Otsu threshold over `counts[v]` = number of voxels with integer value `v`. `None` when
/// fewer than two distinct values occur.
fn otsu_integer(counts: &[u64]) -> Option<usize> {
    let first = counts.iter().position(|&c| c > 0)?;
    let last = counts.iter().rposition(|&c| c > 0)?;
    if first == last {
        return Some(first);
    }
    let c: Vec<f32> = counts[first..=last].iter().map(|&v| v as f32).collect();
    let centres: Vec<f64> = (first..=last).map(|v| v as f64).collect();
    Some(first + otsu_argmax_f64(&c, &centres))
}

/// skimage's Otsu core with float32 counts and float64 bin centres; returns the bin index.
fn otsu_argmax_f64(counts: &[f32], centres: &[f64]) -> usize {
    let n = counts.len();
    let mut w1 = vec![0f32; n];
    let mut acc = 0f32;
    for i in 0..n {
        acc += counts[i];
        w1[i] = acc;
    }
    let mut w2 = vec![0f32; n];
    acc = 0.0;
    for i in (0..n).rev() {
        acc += counts[i];
        w2[i] = acc;
    }
    let cb: Vec<f64> = counts
        .iter()
        .zip(centres)
        .map(|(&c, &b)| f64::from(c) * b)
        .collect();
    let mut m1 = vec![0f64; n];
    let mut s = 0f64;
    for i in 0..n {
        s += cb[i];
        m1[i] = s / f64::from(w1[i]);
    }
    let mut m2 = vec![0f64; n];
    s = 0.0;
    for i in (0..n).rev() {
        s += cb[i];
        m2[i] = s / f64::from(w2[i]);
    }
    let mut best = 0usize;
    let mut best_v = f64::NEG_INFINITY;
    for i in 0..n - 1 {
        let d = m1[i] - m2[i + 1];
        let v = f64::from(w1[i] * w2[i + 1]) * (d * d);
        if v > best_v || (best_v.is_nan() && !v.is_nan()) {
            best_v = v;
            best = i;
        }
    }
    best
}

/// skimage's Otsu core with float32 counts and float32 bin centres (its float-image path).
fn otsu_argmax_f32(counts: &[f32], centres: &[f32]) -> usize {
    let n = counts.len();
    let mut w1 = vec![0f32; n];
    let mut w2 = vec![0f32; n];
    let mut acc = 0f32;
    for i in 0..n {
        acc += counts[i];
        w1[i] = acc;
    }
    acc = 0.0;
    for i in (0..n).rev() {
        acc += counts[i];
        w2[i] = acc;
    }
    let cb: Vec<f32> = counts.iter().zip(centres).map(|(&c, &b)| c * b).collect();
    let mut m1 = vec![0f32; n];
    let mut m2 = vec![0f32; n];
    let mut s = 0f32;
    for i in 0..n {
        s += cb[i];
        m1[i] = s / w1[i];
    }
    s = 0.0;
    for i in (0..n).rev() {
        s += cb[i];
        m2[i] = s / w2[i];
    }
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for i in 0..n - 1 {
        let d = m1[i] - m2[i + 1];
        let v = w1[i] * w2[i + 1] * (d * d);
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best
}

/// Otsu threshold of `f32` data, as `skimage.filters.threshold_otsu(values, nbins)` gives it:
/// data of whole numbers in `0..=65535` use one bin per integer (skimage's integer-image
/// path, exact); other data use `nbins` equal bins over `[min, max]` and return a bin centre
/// (within one bin of skimage). Non-finite values are ignored; empty data give `NaN`.
pub fn otsu_threshold(values: &[f32], nbins: usize) -> f32 {
    let st = super::common::scan(values);
    let (lo, hi) = (st.lo, st.hi);
    let integral = st.not_u16 == 0;
    if lo > hi {
        return f32::NAN;
    }
    if lo == hi {
        return lo;
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    if integral {
        let counts = if st.nonfinite == 0 {
            super::common::whole_histogram(values, hi as usize)
        } else {
            let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
            super::common::whole_histogram(&finite, hi as usize)
        };
        return otsu_integer(&counts).map_or(lo, |t| t as f32);
    }
    let nbins = nbins.max(2);
    // np.histogram(values, bins=nbins) with float32 edges.
    let (first, last) = (lo, hi);
    let edges: Vec<f32> = (0..=nbins)
        .map(|i| {
            if i == nbins {
                last
            } else {
                (i as f64 * ((f64::from(last) - f64::from(first)) / nbins as f64)
                    + f64::from(first)) as f32
            }
        })
        .collect();
    let mut counts = vec![0u64; nbins];
    let norm = nbins as f32 / (last - first);
    for v in finite {
        let mut idx = (((v - first) * norm) as usize).min(nbins - 1);
        if v < edges[idx] && idx > 0 {
            idx -= 1;
        } else if idx + 1 < nbins && v >= edges[idx + 1] {
            idx += 1;
        }
        counts[idx] += 1;
    }
    let counts: Vec<f32> = counts.into_iter().map(|c| c as f32).collect();
    let centres: Vec<f32> = (0..nbins)
        .map(|i| (edges[i] + edges[i + 1]) / 2.0)
        .collect();
    centres[otsu_argmax_f32(&counts, &centres)]
}

/// Mask `x > t` (or `x <= t` when `invert`), as 0/1, appended to `out`.
pub(crate) fn threshold_into(values: &[f32], t: f32, invert: bool, out: &mut Vec<f32>) {
    out.extend(
        values
            .iter()
            .map(|&v| if (v > t) != invert { 1.0 } else { 0.0 }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy_examples() {
        // np.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
        let p = percentiles(&[4.0, 1.0, 3.0, 2.0], &[0.0, 25.0, 50.0, 90.0, 100.0]);
        let want = [1.0, 1.75, 2.5, 3.7, 4.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert_eq!(percentiles(&[5.0], &[30.0]), vec![5.0]);
    }

    #[test]
    fn otsu_small_cases() {
        assert_eq!(otsu_threshold_u8(&[7, 7, 7]), 7);
        assert_eq!(otsu_threshold_u8(&[]), 0);
        // Two clusters: threshold at the upper end of the lower one.
        let v = [10u8, 11, 12, 200, 201, 202];
        assert_eq!(otsu_threshold_u8(&v), 12);
        let f: Vec<f32> = v.iter().map(|&x| f32::from(x)).collect();
        assert_eq!(otsu_threshold(&f, 256), 12.0);
        assert!(otsu_threshold(&[], 256).is_nan());
        let with_nan = [10.0, 11.0, f32::NAN, 200.0, 201.0, f32::INFINITY];
        assert_eq!(otsu_threshold(&with_nan, 256), 11.0);
        assert_eq!(percentiles(&[1.0, 2.0, 3.0], &[50.0]), vec![2.0]);
        let t = otsu_threshold(&[0.1, 0.11, 0.9, 0.91], 256);
        assert!(t > 0.11 && t < 0.9);
    }

    #[test]
    fn invert_and_threshold() {
        assert_eq!(
            invert(&[0.0, 10.0, 255.0], Some(255.0)),
            vec![255.0, 245.0, 0.0]
        );
        assert_eq!(invert(&[2.0, 3.0, 7.0], None), vec![7.0, 6.0, 2.0]);
        assert_eq!(invert(&[f32::NAN], None).len(), 1);
        let mut out = Vec::new();
        threshold_into(&[1.0, 5.0, 9.0], 5.0, false, &mut out);
        assert_eq!(out, vec![0.0, 0.0, 1.0]);
        out.clear();
        threshold_into(&[1.0, 5.0, 9.0], 5.0, true, &mut out);
        assert_eq!(out, vec![1.0, 1.0, 0.0]);
    }
}
