//! Median filter over a box window (per-axis size) in 2D (size z = 1) or 3D.
//!
//! Matches `scipy.ndimage.median_filter(x, size=(sz, sy, sx), mode='reflect')` exactly: the
//! window along an axis of size `s` covers offsets `-(s/2) ..= s-1-s/2` (scipy's origin 0,
//! so even sizes lean towards lower indices), values beyond the edge are read with scipy's
//! half-sample-symmetric `reflect`, and the result is the element of rank `n/2` (0-based) of
//! the `n = sz·sy·sx` window values (the upper median when `n` is even). Golden tests:
//! `median_*` cases in `tests/golden_filters.rs`.
//!
//! Algorithms: `u8` uses Huang's sliding histogram along x (remove one column of the window,
//! add one, move the running median a few bins), so the cost per voxel is `2·sz·sy` updates.
//! `u16` and `f32` keep the window as a sorted vector and replace one column per step (binary
//! search + shift), which is exact for any ordered type. `f32` volumes holding whole numbers
//! in `0..=255` take the `u8` path; `f32` ordering is IEEE total order (NaN sorts last).

use ndarray::{Array3, ArrayView3};

use crate::progress::Progress;

use super::common::{contiguous, from_vec3, reflect_index, voxel_count, Ticker};
use super::FilterError;

/// Largest size accepted along one axis.
pub const MAX_MEDIAN_SIZE: usize = 101;
/// Largest window (product of sizes) accepted.
pub const MAX_MEDIAN_WINDOW: usize = 50_000;

/// Checks `size = [z, y, x]`.
pub(crate) fn validate_size(size: [usize; 3]) -> Result<(), FilterError> {
    for (s, name) in size.iter().zip(["z", "y", "x"]) {
        if *s == 0 {
            return Err(FilterError::invalid(
                "median",
                format!("size {name} must be at least 1"),
            ));
        }
        if *s > MAX_MEDIAN_SIZE {
            return Err(FilterError::invalid(
                "median",
                format!("size {name} = {s} is too large (at most {MAX_MEDIAN_SIZE})"),
            ));
        }
    }
    let n = size[0] * size[1] * size[2];
    if n > MAX_MEDIAN_WINDOW {
        return Err(FilterError::invalid(
            "median",
            format!("window of {n} voxels is too large (at most {MAX_MEDIAN_WINDOW})"),
        ));
    }
    Ok(())
}

/// Reflected source indices for window positions `-lo ..= n-1+hi` of an axis of length `n`.
fn reflected_positions(n: usize, lo: usize, hi: usize) -> Vec<usize> {
    (-(lo as isize)..(n + hi) as isize)
        .map(|i| reflect_index(i, n))
        .collect()
}

/// `(lo, hi)` window extents of scipy's origin-0 window of size `s`.
fn extents(s: usize) -> (usize, usize) {
    (s / 2, s - 1 - s / 2)
}

/// For each output row `(z, y)`, the source row offsets of the `sz·sy` window rows.
fn window_rows(shape: [usize; 3], size: [usize; 3], z: usize, y: usize) -> Vec<usize> {
    let [nz, ny, nx] = shape;
    let (zlo, zhi) = extents(size[0]);
    let (ylo, yhi) = extents(size[1]);
    let mut rows = Vec::with_capacity(size[0] * size[1]);
    for dz in -(zlo as isize)..=(zhi as isize) {
        let zz = reflect_index(z as isize + dz, nz);
        for dy in -(ylo as isize)..=(yhi as isize) {
            let yy = reflect_index(y as isize + dy, ny);
            rows.push((zz * ny + yy) * nx);
        }
    }
    rows
}

/// Median of a `u8` volume (Huang's sliding histogram); `size = [z, y, x]`.
pub fn median_u8(
    volume: ArrayView3<'_, u8>,
    size: [usize; 3],
    progress: &mut dyn Progress,
) -> Result<Array3<u8>, FilterError> {
    validate_size(size)?;
    let (src, shape) = contiguous(&volume);
    let out = median_u8_buffer(&src, shape, size, progress)?;
    Ok(from_vec3(out, shape))
}

fn median_u8_buffer(
    src: &[u8],
    shape: [usize; 3],
    size: [usize; 3],
    progress: &mut dyn Progress,
) -> Result<Vec<u8>, FilterError> {
    let [nz, ny, nx] = shape;
    let mut out = vec![0u8; src.len()];
    if voxel_count(shape) == 0 {
        return Ok(out);
    }
    let n = size[0] * size[1] * size[2];
    let rank = (n / 2) as u32;
    let (xlo, xhi) = extents(size[2]);
    let xs = reflected_positions(nx, xlo, xhi);
    let mut ticker = Ticker::new(progress, nz as u64);
    let mut hist = [0u32; 256];
    for z in 0..nz {
        for y in 0..ny {
            let rows = window_rows(shape, size, z, y);
            hist.fill(0);
            for &xi in &xs[..size[2]] {
                for &r in &rows {
                    hist[src[r + xi] as usize] += 1;
                }
            }
            // Running median `m` with `below` = count of window values < m.
            let mut m = 0usize;
            let mut below = 0u32;
            while below + hist[m] <= rank {
                below += hist[m];
                m += 1;
            }
            let orow = (z * ny + y) * nx;
            out[orow] = m as u8;
            for x in 1..nx {
                let xo = xs[x - 1];
                let xi = xs[x + size[2] - 1];
                for &r in &rows {
                    let a = src[r + xo] as usize;
                    hist[a] -= 1;
                    below -= (a < m) as u32;
                    let b = src[r + xi] as usize;
                    hist[b] += 1;
                    below += (b < m) as u32;
                }
                while below > rank {
                    m -= 1;
                    below -= hist[m];
                }
                while below + hist[m] <= rank {
                    below += hist[m];
                    m += 1;
                }
                out[orow + x] = m as u8;
            }
        }
        ticker.tick()?;
    }
    Ok(out)
}

/// Median over any totally ordered key with a sorted sliding window.
fn median_sorted<K: Copy + Ord>(
    src: &[K],
    shape: [usize; 3],
    size: [usize; 3],
    progress: &mut dyn Progress,
) -> Result<Vec<K>, FilterError> {
    let [nz, ny, nx] = shape;
    if voxel_count(shape) == 0 {
        return Ok(Vec::new());
    }
    let n = size[0] * size[1] * size[2];
    let rank = n / 2;
    let (xlo, xhi) = extents(size[2]);
    let xs = reflected_positions(nx, xlo, xhi);
    let mut out = Vec::with_capacity(src.len());
    let mut window: Vec<K> = Vec::with_capacity(n);
    let mut ticker = Ticker::new(progress, nz as u64);
    for z in 0..nz {
        for y in 0..ny {
            let rows = window_rows(shape, size, z, y);
            window.clear();
            for &xi in &xs[..size[2]] {
                for &r in &rows {
                    window.push(src[r + xi]);
                }
            }
            window.sort_unstable();
            out.push(window[rank]);
            for x in 1..nx {
                let xo = xs[x - 1];
                let xi = xs[x + size[2] - 1];
                for &r in &rows {
                    let a = src[r + xo];
                    let b = src[r + xi];
                    if a == b {
                        continue;
                    }
                    let pa = window.partition_point(|&e| e < a);
                    let pb = window.partition_point(|&e| e < b);
                    // Remove `a` at `pa`, insert `b` so the vector stays sorted.
                    if pb <= pa {
                        window.copy_within(pb..pa, pb + 1);
                        window[pb] = b;
                    } else {
                        window.copy_within(pa + 1..pb, pa);
                        window[pb - 1] = b;
                    }
                }
                out.push(window[rank]);
            }
        }
        ticker.tick()?;
    }
    Ok(out)
}

/// Median of a `u16` volume (sorted sliding window); `size = [z, y, x]`.
pub fn median_u16(
    volume: ArrayView3<'_, u16>,
    size: [usize; 3],
    progress: &mut dyn Progress,
) -> Result<Array3<u16>, FilterError> {
    validate_size(size)?;
    let (src, shape) = contiguous(&volume);
    let out = median_sorted(&src, shape, size, progress)?;
    Ok(from_vec3(out, shape))
}

/// Order-preserving map of `f32` onto `u32` (IEEE total order).
#[inline]
fn f32_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Inverse of [`f32_key`].
#[inline]
fn key_f32(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7fff_ffff)
    } else {
        f32::from_bits(!k)
    }
}

/// Median of an `f32` volume; `size = [z, y, x]`. Volumes of whole numbers in `0..=255` use
/// the `u8` histogram path (same result, much faster).
pub fn median_f32(
    volume: ArrayView3<'_, f32>,
    size: [usize; 3],
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, FilterError> {
    validate_size(size)?;
    let (src, shape) = contiguous(&volume);
    if super::common::scan(&src).is_u8() {
        let bytes: Vec<u8> = src.iter().map(|&v| v as u8).collect();
        let out = median_u8_buffer(&bytes, shape, size, progress)?;
        return Ok(from_vec3(out.into_iter().map(f32::from).collect(), shape));
    }
    let keys: Vec<u32> = src.iter().map(|&v| f32_key(v)).collect();
    let out = median_sorted(&keys, shape, size, progress)?;
    Ok(from_vec3(out.into_iter().map(key_f32).collect(), shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use ndarray::Array3;

    fn brute(src: &Array3<u16>, size: [usize; 3]) -> Array3<u16> {
        let (nz, ny, nx) = src.dim();
        let mut out = src.clone();
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let mut w = Vec::new();
                    for dz in -((size[0] / 2) as isize)..=((size[0] - 1 - size[0] / 2) as isize) {
                        for dy in -((size[1] / 2) as isize)..=((size[1] - 1 - size[1] / 2) as isize)
                        {
                            for dx in
                                -((size[2] / 2) as isize)..=((size[2] - 1 - size[2] / 2) as isize)
                            {
                                w.push(
                                    src[[
                                        reflect_index(z as isize + dz, nz),
                                        reflect_index(y as isize + dy, ny),
                                        reflect_index(x as isize + dx, nx),
                                    ]],
                                );
                            }
                        }
                    }
                    w.sort();
                    out[[z, y, x]] = w[w.len() / 2];
                }
            }
        }
        out
    }

    #[test]
    fn all_paths_agree_with_brute_force() {
        let mut seed = 12345u32;
        let v = Array3::from_shape_fn((4, 5, 7), |_| {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            ((seed >> 24) % 200) as u16
        });
        for size in [[1, 3, 3], [3, 3, 3], [2, 4, 1], [5, 1, 9], [1, 1, 1]] {
            let want = brute(&v, size);
            let got16 = median_u16(v.view(), size, &mut NoProgress).unwrap();
            assert_eq!(got16, want, "u16 {size:?}");
            let v8 = v.mapv(|x| x as u8);
            let got8 = median_u8(v8.view(), size, &mut NoProgress).unwrap();
            assert_eq!(got8.mapv(u16::from), want, "u8 {size:?}");
            let vf = v.mapv(|x| x as f32 + 0.5);
            let gotf = median_f32(vf.view(), size, &mut NoProgress).unwrap();
            assert_eq!(gotf, want.mapv(|x| x as f32 + 0.5), "f32 {size:?}");
        }
    }

    #[test]
    fn f32_keys_preserve_order() {
        let vals = [
            f32::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-30,
            2.0,
            f32::INFINITY,
        ];
        for w in vals.windows(2) {
            assert!(f32_key(w[0]) < f32_key(w[1]));
            assert_eq!(key_f32(f32_key(w[0])).to_bits(), w[0].to_bits());
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        let v = Array3::<u8>::zeros((2, 2, 2));
        assert!(median_u8(v.view(), [0, 3, 3], &mut NoProgress).is_err());
        assert!(median_u8(v.view(), [1, 3, 1000], &mut NoProgress).is_err());
        assert!(median_u8(v.view(), [101, 101, 101], &mut NoProgress).is_err());
    }
}
