//! Binary and grey-level morphology (erode, dilate, open, close) in 2D (radius z = 0, each
//! slice on its own) and 3D, with box, cross and ball (ellipsoid) structuring elements.
//!
//! References (golden tests `morph_*` in `tests/golden_filters.rs`, exact):
//! - binary: `scipy.ndimage.binary_erosion / binary_dilation / binary_opening /
//!   binary_closing(x != 0, structure=footprint)` with their defaults (`border_value=0`,
//!   one iteration);
//! - grey: `scipy.ndimage.grey_erosion / grey_dilation / grey_opening /
//!   grey_closing(x, footprint=footprint)` with their default `mode='reflect'`.
//!
//! Border behaviour, as scipy has it:
//! - binary erosion treats everything outside as 0, so every voxel closer to the border
//!   than the radius (along an axis whose radius is > 0) becomes 0. This also applies to
//!   the erosion inside a binary *closing*, which therefore clears that border band too;
//! - binary dilation treats the outside as 0 (nothing is added from outside);
//! - grey erosion/dilation read the outside by reflection; for these footprints (symmetric
//!   and "monotone": shrinking any coordinate of an offset keeps it inside) that is the
//!   same as taking the min/max over the part of the footprint inside the volume, which is
//!   how it is computed.
//!
//! Footprints for `radius = [rz, ry, rx]` (offsets `d` with `|d_a| ≤ r_a`):
//! - `box`: all of them;
//! - `cross`: those with at most one non-zero coordinate (scipy's
//!   `generate_binary_structure(3, 1)` for radius 1);
//! - `ball`: `Σ (d_a / r_a)² ≤ 1` over axes with `r_a > 0`, evaluated in integers —
//!   `skimage.morphology.ball(r)` / `disk(r)` when all radii are equal.
//!
//! Algorithm: every footprint is a union of x-runs `[-w, w]` at offsets `(dz, dy)`. Each
//! plane's rows get a sliding min/max for each distinct `w` (kept in a small ring of planes),
//! and the output row is the min/max over the runs' rows. Boxes are done as three separable
//! 1D passes. All inner loops run along contiguous x-rows.

use serde::{Deserialize, Serialize};

use super::common::{voxel_count, Ticker};
use super::FilterError;

/// Morphological operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MorphOp {
    /// Erosion (minimum over the footprint).
    Erode,
    /// Dilation (maximum over the footprint).
    Dilate,
    /// Opening: erosion, then dilation.
    Open,
    /// Closing: dilation, then erosion.
    Close,
}

/// Binary (input `!= 0`, output 0/1) or grey-level morphology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MorphMode {
    /// Input is a mask (`x != 0`); output 0/1; outside the volume counts as 0.
    Binary,
    /// Min/max of the values; the outside is read by reflection.
    #[default]
    Grey,
}

/// Structuring element shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FootprintShape {
    /// Full box `(2rz+1) × (2ry+1) × (2rx+1)`.
    Box,
    /// Axis-aligned cross (at most one non-zero coordinate).
    Cross,
    /// Ball / ellipsoid `Σ (d/r)² ≤ 1`.
    #[default]
    Ball,
}

/// Morphology parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MorphologyParams {
    /// Operation.
    pub op: MorphOp,
    /// Binary or grey.
    #[serde(default)]
    pub mode: MorphMode,
    /// Footprint shape.
    #[serde(default)]
    pub footprint: FootprintShape,
    /// Radius per axis: `[y, x]` (each slice on its own) or `[z, y, x]` (3D).
    pub radius: Vec<usize>,
}

/// Largest radius accepted along one axis.
pub const MAX_MORPH_RADIUS: usize = 50;

impl MorphologyParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), FilterError> {
        if self.radius.len() != 2 && self.radius.len() != 3 {
            return Err(FilterError::invalid(
                "morphology",
                format!(
                    "radius needs 2 ([y, x], per slice) or 3 ([z, y, x]) values, got {}",
                    self.radius.len()
                ),
            ));
        }
        if let Some(r) = self.radius.iter().find(|&&r| r > MAX_MORPH_RADIUS) {
            return Err(FilterError::invalid(
                "morphology",
                format!("radius {r} is too large (at most {MAX_MORPH_RADIUS})"),
            ));
        }
        Ok(())
    }

    /// The radius as `[z, y, x]` (z = 0 for per-slice parameters).
    pub fn radius3(&self) -> [usize; 3] {
        match self.radius.as_slice() {
            [y, x] => [0, *y, *x],
            [z, y, x] => [*z, *y, *x],
            _ => [0, 0, 0],
        }
    }
}

/// Values min/max morphology runs on.
pub trait MorphValue: Copy + PartialOrd + Default + 'static {
    /// Identity of `max` (smallest value).
    const LOWEST: Self;
    /// Identity of `min` (largest value).
    const HIGHEST: Self;
    /// Background of a binary result.
    const ZERO: Self;
    /// Foreground of a binary result.
    const ONE: Self;
}

impl MorphValue for u8 {
    const LOWEST: Self = 0;
    const HIGHEST: Self = u8::MAX;
    const ZERO: Self = 0;
    const ONE: Self = 1;
}

impl MorphValue for u16 {
    const LOWEST: Self = 0;
    const HIGHEST: Self = u16::MAX;
    const ZERO: Self = 0;
    const ONE: Self = 1;
}

impl MorphValue for f32 {
    const LOWEST: Self = f32::NEG_INFINITY;
    const HIGHEST: Self = f32::INFINITY;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// Morphology of a `u8`, `u16` or `f32` volume, keeping its type: grey mode returns min/max
/// values, binary mode reads `x != 0` and returns 0/1. Reports per z plane and pass.
pub fn morphology<T: MorphValue>(
    volume: ndarray::ArrayView3<'_, T>,
    params: &MorphologyParams,
    progress: &mut dyn crate::progress::Progress,
) -> Result<ndarray::Array3<T>, FilterError> {
    let (src, shape) = super::common::contiguous(&volume);
    let out = morphology_buffer(&src, shape, params, T::ZERO, T::ONE, progress)?;
    Ok(super::common::from_vec3(out, shape))
}

/// `true` at the offsets of the footprint, as a `(2rz+1) × (2ry+1) × (2rx+1)` C-order grid.
pub fn footprint_mask(shape: FootprintShape, radius: [usize; 3]) -> Vec<bool> {
    let [rz, ry, rx] = radius.map(|r| r as isize);
    let mut out = Vec::new();
    for dz in -rz..=rz {
        for dy in -ry..=ry {
            let w = run_width(shape, radius, dz, dy);
            for dx in -rx..=rx {
                out.push(w.is_some_and(|w| dx.unsigned_abs() <= w));
            }
        }
    }
    out
}

/// Half-width of the footprint's x-run at `(dz, dy)`, if it has one.
fn run_width(shape: FootprintShape, radius: [usize; 3], dz: isize, dy: isize) -> Option<usize> {
    let [_, _, rx] = radius;
    match shape {
        FootprintShape::Box => Some(rx),
        FootprintShape::Cross => match (dz == 0, dy == 0) {
            (true, true) => Some(rx),
            (true, false) | (false, true) => Some(0),
            (false, false) => None,
        },
        FootprintShape::Ball => {
            let inside =
                |dx: usize| ball_contains(radius, [dz.unsigned_abs(), dy.unsigned_abs(), dx]);
            if !inside(0) {
                return None;
            }
            Some((0..=rx).take_while(|&dx| inside(dx)).last().unwrap_or(0))
        }
    }
}

/// `Σ (d_a / r_a)² ≤ 1` over axes with `r_a > 0` (in integers); `d_a` must be 0 where `r_a = 0`.
fn ball_contains(radius: [usize; 3], d: [usize; 3]) -> bool {
    let mut prod: u128 = 1;
    for a in 0..3 {
        if radius[a] == 0 {
            if d[a] != 0 {
                return false;
            }
        } else {
            prod *= (radius[a] * radius[a]) as u128;
        }
    }
    let mut lhs: u128 = 0;
    for a in 0..3 {
        if radius[a] > 0 {
            let r2 = (radius[a] * radius[a]) as u128;
            lhs += (d[a] * d[a]) as u128 * (prod / r2);
        }
    }
    lhs <= prod
}

#[inline]
fn pick<T: MorphValue>(a: T, b: T, max: bool) -> T {
    if max {
        if b > a {
            b
        } else {
            a
        }
    } else if b < a {
        b
    } else {
        a
    }
}

/// Sliding min/max with half-width `w` along one row (window clipped to the row).
fn row_extremum<T: MorphValue>(row: &[T], out: &mut [T], w: usize, max: bool, buf: &mut Vec<T>) {
    let n = row.len();
    let ident = if max { T::LOWEST } else { T::HIGHEST };
    buf.clear();
    buf.resize(n + 2 * w, ident);
    buf[w..w + n].copy_from_slice(row);
    out.copy_from_slice(row);
    for d in 1..=w {
        let a = &buf[w - d..w - d + n];
        let b = &buf[w + d..w + d + n];
        for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
            *o = pick(pick(*o, p, max), q, max);
        }
    }
}

/// `acc[i] = ext(acc[i], row[i])`.
#[inline]
fn combine<T: MorphValue>(acc: &mut [T], row: &[T], max: bool) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a = pick(*a, r, max);
    }
}

/// One erosion (`max = false`) or dilation over the footprint, outside ignored.
fn extremum<T: MorphValue>(
    src: &[T],
    shape: [usize; 3],
    fp: FootprintShape,
    radius: [usize; 3],
    max: bool,
    ticker: &mut Ticker<'_>,
) -> Result<Vec<T>, FilterError> {
    let [nz, ny, nx] = shape;
    let plane = ny * nx;
    let mut buf = Vec::new();
    if fp == FootprintShape::Box {
        // Separable: x and y within each plane, then z.
        let mut a = vec![T::default(); src.len()];
        let mut rowtmp = vec![T::default(); nx];
        let mut xs = vec![T::default(); plane];
        for z in 0..nz {
            let p = &src[z * plane..(z + 1) * plane];
            for y in 0..ny {
                row_extremum(
                    &p[y * nx..(y + 1) * nx],
                    &mut xs[y * nx..(y + 1) * nx],
                    radius[2],
                    max,
                    &mut buf,
                );
            }
            let out = &mut a[z * plane..(z + 1) * plane];
            for y in 0..ny {
                rowtmp.copy_from_slice(&xs[y * nx..(y + 1) * nx]);
                for yy in y.saturating_sub(radius[1])..(y + radius[1] + 1).min(ny) {
                    combine(&mut rowtmp, &xs[yy * nx..(yy + 1) * nx], max);
                }
                out[y * nx..(y + 1) * nx].copy_from_slice(&rowtmp);
            }
            ticker.tick()?;
        }
        if radius[0] == 0 {
            for _ in 0..nz {
                ticker.tick()?;
            }
            return Ok(a);
        }
        let mut b = vec![T::default(); src.len()];
        for z in 0..nz {
            let out = &mut b[z * plane..(z + 1) * plane];
            out.copy_from_slice(&a[z * plane..(z + 1) * plane]);
            for zz in z.saturating_sub(radius[0])..(z + radius[0] + 1).min(nz) {
                combine(out, &a[zz * plane..(zz + 1) * plane], max);
            }
            ticker.tick()?;
        }
        return Ok(b);
    }

    // Runs of the footprint and their distinct widths.
    let [rz, ry, _] = radius.map(|r| r as isize);
    let mut runs: Vec<(isize, isize, usize)> = Vec::new();
    for dz in -rz..=rz {
        for dy in -ry..=ry {
            if let Some(w) = run_width(fp, radius, dz, dy) {
                runs.push((dz, dy, w));
            }
        }
    }
    let mut widths: Vec<usize> = runs.iter().map(|r| r.2).collect();
    widths.sort_unstable();
    widths.dedup();
    let runs: Vec<(isize, isize, usize)> = runs
        .into_iter()
        .map(|(dz, dy, w)| (dz, dy, widths.partition_point(|&v| v < w)))
        .collect();

    // Ring of row-extremum planes: slot (z mod ring) holds plane z for every width.
    let ring = 2 * radius[0] + 1;
    let mut slot_plane: Vec<Option<usize>> = vec![None; ring];
    let mut cache: Vec<Vec<T>> = vec![Vec::new(); ring * widths.len()];
    let ident = if max { T::LOWEST } else { T::HIGHEST };
    let mut out = vec![ident; src.len()];
    for z in 0..nz {
        // Make sure planes z-rz ..= z+rz are cached.
        for zz in z.saturating_sub(radius[0])..(z + radius[0] + 1).min(nz) {
            let slot = zz % ring;
            if slot_plane[slot] == Some(zz) {
                continue;
            }
            let p = &src[zz * plane..(zz + 1) * plane];
            for (wi, &w) in widths.iter().enumerate() {
                if w == 0 {
                    continue; // read straight from the source plane
                }
                let c = &mut cache[slot * widths.len() + wi];
                c.resize(plane, T::default());
                for y in 0..ny {
                    row_extremum(
                        &p[y * nx..(y + 1) * nx],
                        &mut c[y * nx..(y + 1) * nx],
                        w,
                        max,
                        &mut buf,
                    );
                }
            }
            slot_plane[slot] = Some(zz);
        }
        ticker.tick()?;
        let o = &mut out[z * plane..(z + 1) * plane];
        for &(dz, dy, wi) in &runs {
            let zz = z as isize + dz;
            if zz < 0 || zz as usize >= nz {
                continue;
            }
            let zz = zz as usize;
            let c: &[T] = if widths[wi] == 0 {
                &src[zz * plane..(zz + 1) * plane]
            } else {
                &cache[(zz % ring) * widths.len() + wi]
            };
            for y in 0..ny {
                let yy = y as isize + dy;
                if yy < 0 || yy as usize >= ny {
                    continue;
                }
                let yy = yy as usize;
                combine(
                    &mut o[y * nx..(y + 1) * nx],
                    &c[yy * nx..(yy + 1) * nx],
                    max,
                );
            }
        }
        ticker.tick()?;
    }
    Ok(out)
}

/// Sets every voxel within `radius[a]` of the border along an axis with `radius[a] > 0` to
/// `zero` (binary erosion with `border_value = 0`).
fn clear_border<T: Copy>(data: &mut [T], shape: [usize; 3], radius: [usize; 3], zero: T) {
    let [nz, ny, nx] = shape;
    for z in 0..nz {
        let zb = radius[0] > 0 && (z < radius[0] || z + radius[0] >= nz);
        for y in 0..ny {
            let yb = radius[1] > 0 && (y < radius[1] || y + radius[1] >= ny);
            let row = &mut data[(z * ny + y) * nx..(z * ny + y + 1) * nx];
            if zb || yb {
                row.fill(zero);
            } else if radius[2] > 0 {
                let r = radius[2].min(nx);
                row[..r].fill(zero);
                row[nx - r..].fill(zero);
            }
        }
    }
}

/// Number of progress units [`morphology_buffer`] reports.
fn ops_count(op: MorphOp) -> u64 {
    match op {
        MorphOp::Erode | MorphOp::Dilate => 1,
        MorphOp::Open | MorphOp::Close => 2,
    }
}

/// Runs `op` on a C-order buffer. Binary mode reads `v != zero` and writes `zero` / `one`.
pub(crate) fn morphology_buffer<T: MorphValue>(
    src: &[T],
    shape: [usize; 3],
    params: &MorphologyParams,
    zero: T,
    one: T,
    progress: &mut dyn crate::progress::Progress,
) -> Result<Vec<T>, FilterError> {
    params.validate()?;
    if voxel_count(shape) == 0 {
        return Ok(src.to_vec());
    }
    let radius = params.radius3();
    let fp = params.footprint;
    let steps: &[bool] = match params.op {
        MorphOp::Erode => &[false],
        MorphOp::Dilate => &[true],
        MorphOp::Open => &[false, true],
        MorphOp::Close => &[true, false],
    };
    let mut ticker = Ticker::new(progress, ops_count(params.op) * 2 * shape[0] as u64);
    match params.mode {
        MorphMode::Grey => {
            let mut cur = src.to_vec();
            for &max in steps {
                cur = extremum(&cur, shape, fp, radius, max, &mut ticker)?;
            }
            Ok(cur)
        }
        MorphMode::Binary => {
            let mut cur: Vec<u8> = src.iter().map(|&v| u8::from(v != zero)).collect();
            for &max in steps {
                cur = extremum(&cur, shape, fp, radius, max, &mut ticker)?;
                if !max {
                    clear_border(&mut cur, shape, radius, 0);
                }
            }
            Ok(cur
                .into_iter()
                .map(|b| if b != 0 { one } else { zero })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn footprints() {
        let count = |s, r| footprint_mask(s, r).iter().filter(|&&b| b).count();
        assert_eq!(count(FootprintShape::Box, [1, 1, 1]), 27);
        assert_eq!(count(FootprintShape::Cross, [1, 1, 1]), 7);
        assert_eq!(count(FootprintShape::Ball, [1, 1, 1]), 7);
        assert_eq!(count(FootprintShape::Ball, [2, 2, 2]), 33); // skimage.morphology.ball(2)
        assert_eq!(count(FootprintShape::Ball, [0, 2, 2]), 13); // disk(2)
        assert_eq!(count(FootprintShape::Ball, [0, 0, 0]), 1);
        assert_eq!(count(FootprintShape::Cross, [0, 2, 3]), 11);
    }

    fn brute(
        src: &[f32],
        shape: [usize; 3],
        fp: FootprintShape,
        r: [usize; 3],
        max: bool,
    ) -> Vec<f32> {
        let mask = footprint_mask(fp, r);
        let [nz, ny, nx] = shape;
        let mut out = vec![0.0; src.len()];
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let mut acc = if max {
                        f32::NEG_INFINITY
                    } else {
                        f32::INFINITY
                    };
                    let mut k = 0;
                    for dz in -(r[0] as isize)..=r[0] as isize {
                        for dy in -(r[1] as isize)..=r[1] as isize {
                            for dx in -(r[2] as isize)..=r[2] as isize {
                                let (zz, yy, xx) =
                                    (z as isize + dz, y as isize + dy, x as isize + dx);
                                let inside = zz >= 0
                                    && yy >= 0
                                    && xx >= 0
                                    && (zz as usize) < nz
                                    && (yy as usize) < ny
                                    && (xx as usize) < nx;
                                if mask[k] && inside {
                                    let v =
                                        src[(zz as usize * ny + yy as usize) * nx + xx as usize];
                                    acc = if max { acc.max(v) } else { acc.min(v) };
                                }
                                k += 1;
                            }
                        }
                    }
                    out[(z * ny + y) * nx + x] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn grey_matches_brute_force() {
        let shape = [4, 6, 7];
        let mut s = 7u32;
        let src: Vec<f32> = (0..4 * 6 * 7)
            .map(|_| {
                s = s.wrapping_mul(1103515245).wrapping_add(12345);
                ((s >> 16) % 100) as f32
            })
            .collect();
        for fp in [
            FootprintShape::Box,
            FootprintShape::Cross,
            FootprintShape::Ball,
        ] {
            for r in [[1, 1, 1], [0, 2, 1], [2, 1, 3], [0, 0, 0]] {
                for (op, max) in [(MorphOp::Erode, false), (MorphOp::Dilate, true)] {
                    let p = MorphologyParams {
                        op,
                        mode: MorphMode::Grey,
                        footprint: fp,
                        radius: r.to_vec(),
                    };
                    let got =
                        morphology_buffer(&src, shape, &p, 0.0, 1.0, &mut NoProgress).unwrap();
                    assert_eq!(got, brute(&src, shape, fp, r, max), "{fp:?} {r:?} {op:?}");
                }
            }
        }
    }

    #[test]
    fn binary_erosion_clears_border_band() {
        let shape = [3, 5, 5];
        let src = vec![1.0f32; 75];
        let p = MorphologyParams {
            op: MorphOp::Erode,
            mode: MorphMode::Binary,
            footprint: FootprintShape::Ball,
            radius: vec![1, 1],
        };
        let got = morphology_buffer(&src, shape, &p, 0.0, 1.0, &mut NoProgress).unwrap();
        // Per slice: only the 3×3 interior survives.
        assert_eq!(got.iter().sum::<f32>(), 27.0);
        assert!(p.validate().is_ok());
        let bad = MorphologyParams {
            radius: vec![1],
            ..p.clone()
        };
        assert!(bad.validate().is_err());
        let bad = MorphologyParams {
            radius: vec![1, 100],
            ..p
        };
        assert!(bad.validate().is_err());
    }
}
