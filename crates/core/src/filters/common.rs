//! Shared helpers for the filters: border index maps (scipy's `reflect` and numpy's /
//! OpenCV's reflect-101), a tiny float trait so the separable code runs in `f32` and `f64`,
//! contiguous copies of array views, and a progress adapter for multi-pass kernels.
//!
//! Hand-written; exercised through every golden test in `tests/golden_filters.rs`.

use std::ops::{Add, AddAssign, ControlFlow, Mul, Sub};

use ndarray::{Array3, ArrayView3};

use crate::progress::{check, Progress};

use super::FilterError;

/// scipy.ndimage `mode='reflect'` (half-sample symmetric, `d c b a | a b c d | d c b a`),
/// repeated with period `2n` when the offset passes the whole line (as scipy does).
#[inline]
pub(crate) fn reflect_index(i: isize, n: usize) -> usize {
    debug_assert!(n > 0);
    let n = n as isize;
    let p = 2 * n;
    let m = i.rem_euclid(p);
    (if m < n { m } else { p - 1 - m }) as usize
}

/// numpy `np.pad(mode='reflect')` and OpenCV `BORDER_REFLECT_101` (whole-sample symmetric,
/// `d c b | a b c d | c b a`), repeated with period `2n - 2`; a line of one sample repeats it.
#[inline]
pub(crate) fn reflect101_index(i: isize, n: usize) -> usize {
    debug_assert!(n > 0);
    if n == 1 {
        return 0;
    }
    let n = n as isize;
    let p = 2 * n - 2;
    let m = i.rem_euclid(p);
    (if m < n { m } else { p - m }) as usize
}

/// The float types the separable kernels run in.
pub(crate) trait Real:
    Copy
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + AddAssign
{
    /// Converts (rounding) from `f64`.
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// The view's data as a C-order slice: borrowed when the view is already contiguous in
/// standard layout, copied otherwise.
pub(crate) fn contiguous<'a, T: Copy>(
    view: &'a ArrayView3<'_, T>,
) -> (std::borrow::Cow<'a, [T]>, [usize; 3]) {
    let (z, y, x) = view.dim();
    let data = match view.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(view.iter().copied().collect()),
    };
    (data, [z, y, x])
}

/// Wraps a flat C-order vector back into an array.
pub(crate) fn from_vec3<T>(data: Vec<T>, shape: [usize; 3]) -> Array3<T> {
    Array3::from_shape_vec((shape[0], shape[1], shape[2]), data)
        .expect("callers pass a vector of exactly shape[0] * shape[1] * shape[2] elements")
}

/// Number of voxels; `0` for any empty axis.
pub(crate) fn voxel_count(shape: [usize; 3]) -> usize {
    shape[0] * shape[1] * shape[2]
}

/// Counts finished units of a multi-pass kernel and reports them to the caller's
/// [`Progress`], turning a stop request into [`FilterError::Cancelled`].
pub(crate) struct Ticker<'a> {
    progress: &'a mut dyn Progress,
    done: u64,
    total: u64,
}

impl<'a> Ticker<'a> {
    /// A ticker expecting `total` units.
    pub(crate) fn new(progress: &'a mut dyn Progress, total: u64) -> Self {
        Self {
            progress,
            done: 0,
            total: total.max(1),
        }
    }

    /// One more unit is finished.
    pub(crate) fn tick(&mut self) -> Result<(), FilterError> {
        self.done = (self.done + 1).min(self.total);
        check(self.progress, self.done, self.total)?;
        Ok(())
    }
}

/// Maps the progress of stage `stage` of `stages` onto one overall 0..=1000·stages scale.
pub(crate) struct StageProgress<'a> {
    pub(crate) inner: &'a mut dyn Progress,
    pub(crate) stage: u64,
    pub(crate) stages: u64,
}

impl Progress for StageProgress<'_> {
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        let total = total.max(1);
        let frac = done.min(total) * 1000 / total;
        self.inner
            .report(self.stage * 1000 + frac, self.stages.max(1) * 1000)
    }
}

/// Counts of each whole value `0..=hi` (values are whole numbers in `0..=hi`, checked by the
/// caller; others are clamped). Four interleaved histograms avoid store-to-load stalls on
/// runs of equal values.
pub(crate) fn whole_histogram(values: &[f32], hi: usize) -> Vec<u64> {
    let n = hi + 1;
    let mut h = vec![0u32; 4 * n];
    let mut out = vec![0u64; n];
    // Flush before u32 counters could overflow.
    for block in values.chunks(1 << 30) {
        let chunks = block.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            for (k, &v) in c.iter().enumerate() {
                h[k * n + (v as usize).min(hi)] += 1;
            }
        }
        for &v in rest {
            h[(v as usize).min(hi)] += 1;
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o += (0..4).map(|k| u64::from(h[k * n + i])).sum::<u64>();
        }
        h.fill(0);
    }
    out
}

/// Summary of a block of `f32` values from one pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scan {
    /// Smallest finite value (`inf` when there is none).
    pub(crate) lo: f32,
    /// Largest finite value (`-inf` when there is none).
    pub(crate) hi: f32,
    /// Number of NaN and infinite values.
    pub(crate) nonfinite: u64,
    /// Finite values that are not whole numbers in `0..=255`.
    pub(crate) not_u8: u64,
    /// Finite values that are not whole numbers in `0..=65535`.
    pub(crate) not_u16: u64,
}

impl Scan {
    /// All values are whole numbers in `0..=255`.
    pub(crate) fn is_u8(&self) -> bool {
        self.nonfinite == 0 && self.not_u8 == 0
    }
    /// All values are whole numbers in `0..=65535`.
    pub(crate) fn is_u16(&self) -> bool {
        self.nonfinite == 0 && self.not_u16 == 0
    }
}

/// `v` is a whole number in `0..=65535` (no `trunc`, which is a libm call on baseline x86-64).
#[inline]
fn whole_u16(v: f32) -> bool {
    (0.0..=65535.0).contains(&v) & ((v as i32) as f32 == v)
}

/// One pass over `values` with 8 independent lanes (so the loop vectorises; no `trunc`
/// call, which is a libm function on baseline x86-64).
pub(crate) fn scan(values: &[f32]) -> Scan {
    const L: usize = 8;
    let mut lo = [f32::INFINITY; L];
    let mut hi = [f32::NEG_INFINITY; L];
    let mut nonfinite = [0u32; L];
    let mut not_u8 = [0u32; L];
    let mut not_u16 = [0u32; L];
    let mut total = Scan {
        lo: f32::INFINITY,
        hi: f32::NEG_INFINITY,
        nonfinite: 0,
        not_u8: 0,
        not_u16: 0,
    };
    let mut flush = |lo: &mut [f32; L],
                     hi: &mut [f32; L],
                     a: &mut [u32; L],
                     b: &mut [u32; L],
                     c: &mut [u32; L]| {
        for i in 0..L {
            total.lo = total.lo.min(lo[i]);
            total.hi = total.hi.max(hi[i]);
            total.nonfinite += u64::from(a[i]);
            total.not_u8 += u64::from(b[i]);
            total.not_u16 += u64::from(c[i]);
            a[i] = 0;
            b[i] = 0;
            c[i] = 0;
        }
    };
    // Flush the u32 counters well before they could overflow.
    for block in values.chunks(L << 24) {
        let chunks = block.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            // Branch-free (`&`, selects) so that the lanes vectorise. Infinities are
            // included in lo/hi here and counted; a block with any is redone below.
            for i in 0..L {
                let v = c[i];
                lo[i] = if v < lo[i] { v } else { lo[i] };
                hi[i] = if v > hi[i] { v } else { hi[i] };
                let finite = v.abs() < f32::INFINITY;
                let whole16 = whole_u16(v);
                nonfinite[i] += u32::from(!finite);
                not_u16[i] += u32::from(finite & !whole16);
                not_u8[i] += u32::from(finite & !(whole16 & (v <= 255.0)));
            }
        }
        if nonfinite.iter().any(|&n| n > 0) {
            // Rare: recompute lo/hi of this block over finite values only.
            lo = [f32::INFINITY; L];
            hi = [f32::NEG_INFINITY; L];
            for &v in block.iter().filter(|v| v.is_finite()) {
                lo[0] = lo[0].min(v);
                hi[0] = hi[0].max(v);
            }
            nonfinite = [0; L];
            nonfinite[0] = block.iter().filter(|v| !v.is_finite()).count() as u32;
            not_u8 = [0; L];
            not_u16 = [0; L];
            for &v in block.iter().filter(|v| v.is_finite()) {
                let whole16 = whole_u16(v);
                not_u16[0] += u32::from(!whole16);
                not_u8[0] += u32::from(!(whole16 && v <= 255.0));
            }
            flush(&mut lo, &mut hi, &mut nonfinite, &mut not_u8, &mut not_u16);
            continue;
        }
        for (i, &v) in rest.iter().enumerate() {
            let finite = v.abs() < f32::INFINITY;
            if finite {
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
            }
            let whole16 = whole_u16(v);
            nonfinite[i] += u32::from(!finite);
            not_u16[i] += u32::from(finite && !whole16);
            not_u8[i] += u32::from(finite && !(whole16 && v <= 255.0));
        }
        flush(&mut lo, &mut hi, &mut nonfinite, &mut not_u8, &mut not_u16);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_counts() {
        let s = scan(&[
            3.0,
            255.0,
            256.0,
            0.5,
            f32::NAN,
            f32::INFINITY,
            -1.0,
            70000.0,
            1.0,
        ]);
        assert_eq!((s.lo, s.hi), (-1.0, 70000.0));
        assert_eq!((s.nonfinite, s.not_u8, s.not_u16), (2, 4, 3));
        assert!(!s.is_u8() && !s.is_u16());
        let v: Vec<f32> = (0..100).map(|i| (i % 256) as f32).collect();
        assert!(scan(&v).is_u8());
        let e = scan(&[]);
        assert!(e.lo > e.hi && e.is_u8());
    }

    #[test]
    fn reflect_matches_scipy_and_numpy() {
        // scipy reflect on [0, 1, 2]: ... 2 1 0 | 0 1 2 | 2 1 0 | 0 ...
        let got: Vec<usize> = (-7..10).map(|i| reflect_index(i, 3)).collect();
        assert_eq!(got, vec![0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2]);
        // numpy reflect on [0, 1, 2, 3] padded by 12 on the right.
        let got: Vec<usize> = (0..16).map(|i| reflect101_index(i, 4)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]);
        let got: Vec<usize> = (-12..0).map(|i| reflect101_index(i, 4)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]);
        assert_eq!(reflect_index(-5, 1), 0);
        assert_eq!(reflect101_index(7, 1), 0);
    }
}
