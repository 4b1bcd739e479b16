//! Where FFN inference starts objects: google/ffn's `PolicyPeaks` (`ffn/inference/seed.py`).
//!
//! On the normalised image: the 3D Sobel gradient magnitude (scipy's `sobel` per axis:
//! `[-1, 0, 1]` along it, `[1, 2, 1]` along the others, reflect border), an adaptive
//! threshold (the magnitude smoothed by a Gaussian of σ = 49/6, `core::filters::gaussian`),
//! voxels above it are edges; the Euclidean distance of every other voxel to the nearest
//! edge (`core::distance::edt_3d`); its local maxima (skimage's `peak_local_max` with
//! `min_distance = 3`: equal to the maximum of their 7³ neighbourhood, above 0, not within 3
//! of the border, taken from the highest down while no taken peak is within 3 along every
//! axis), plateaus broken by adding noise below 1e-4 exactly as google/ffn draws it (numpy's
//! `RandomState(42).rand`: MT19937 from the `rand_mt` crate, two draws per double), in f64.
//! The seeds come back in ascending z, y, x order.
//!
//! Hand-written: no crate computes these; [`local_peaks`] is checked against skimage's
//! `peak_local_max` (with the same noise) by `tests/golden_ffn_seeds.rs`, fixtures from
//! `scripts/golden/gen_ffn_seeds.py`.

use emstudio_core::distance::edt_3d;
use emstudio_core::filters::gaussian::gaussian;
use emstudio_core::progress::NoProgress;
use ndarray::{Array3, ArrayView3};

/// skimage's `min_distance` as google/ffn calls it.
pub const MIN_DISTANCE: usize = 3;
/// The adaptive threshold's Gaussian σ.
pub const THRESHOLD_SIGMA: f32 = 49.0 / 6.0;

/// Sum of `image` correlated with scipy's Sobel kernel along `axis` (reflect border).
fn sobel(image: ArrayView3<'_, f32>, axis: usize) -> Array3<f32> {
    let (nz, ny, nx) = image.dim();
    let n = [nz, ny, nx];
    let reflect = |i: isize, len: usize| -> usize {
        if i < 0 {
            (-i - 1) as usize
        } else if i as usize >= len {
            2 * len - 1 - i as usize
        } else {
            i as usize
        }
        .min(len - 1)
    };
    let mut out = Array3::<f32>::zeros((nz, ny, nx));
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let p = [z as isize, y as isize, x as isize];
                let mut acc = 0.0f32;
                for dz in -1..=1isize {
                    for dy in -1..=1isize {
                        for dx in -1..=1isize {
                            let d = [dz, dy, dx];
                            let mut w = d[axis] as f32;
                            if w == 0.0 {
                                continue;
                            }
                            for (a, &da) in d.iter().enumerate() {
                                if a != axis {
                                    w *= if da == 0 { 2.0 } else { 1.0 };
                                }
                            }
                            let q = [0, 1, 2].map(|a| reflect(p[a] + d[a], n[a]));
                            acc += w * image[q];
                        }
                    }
                }
                out[[z, y, x]] = acc;
            }
        }
    }
    out
}

/// numpy's `RandomState(seed).rand(len)`: MT19937 seeded by `init_genrand(seed)`, each
/// double `(a >> 5 · 2^26 + b >> 6) / 2^53` from two 32-bit draws.
pub fn numpy_rand(len: usize, seed: u32) -> Vec<f64> {
    let mut mt = rand_mt::Mt::new(seed);
    (0..len)
        .map(|_| {
            let a = f64::from(mt.next_u32() >> 5);
            let b = f64::from(mt.next_u32() >> 6);
            (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
        })
        .collect()
}

/// The distance of every non-edge voxel to the nearest edge (see the module doc).
pub fn edge_distance(image: ArrayView3<'_, f32>) -> Array3<f32> {
    let mut edges = sobel(image, 0).mapv(|v| v * v);
    for axis in 1..3 {
        edges.zip_mut_with(&sobel(image, axis), |e, &g| *e += g * g);
    }
    edges.mapv_inplace(f32::sqrt);
    let threshold = gaussian(edges.view(), [THRESHOLD_SIGMA; 3], &mut NoProgress)
        .expect("a positive sigma is valid");
    let inside = ndarray::Zip::from(&edges)
        .and(&threshold)
        .map_collect(|&e, &t| u8::from(e <= t));
    if inside.iter().all(|&v| v == 1) {
        // No edge at all: no distance to speak of, and no seed.
        return Array3::zeros(inside.dim());
    }
    edt_3d(inside.view(), [1.0; 3], &mut NoProgress).expect("unit sampling is valid")
}

/// Local maxima of `values` (see the module doc), strongest first before the final ascending
/// sort. `values` should already hold any tie-breaking noise.
pub fn local_peaks(values: ArrayView3<'_, f64>, min_distance: usize) -> Vec<[usize; 3]> {
    let (nz, ny, nx) = values.dim();
    let r = min_distance;
    if nz <= 2 * r || ny <= 2 * r || nx <= 2 * r {
        return Vec::new();
    }
    // The maximum over the (2r+1)³ box, border 'nearest', separably.
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let mut m = values.to_owned();
    for axis in 0..3 {
        let src = m.clone();
        let n = [nz, ny, nx][axis];
        for ((z, y, x), out) in m.indexed_iter_mut() {
            let p = [z, y, x];
            let mut best = f64::NEG_INFINITY;
            for d in -(r as isize)..=(r as isize) {
                let mut q = p;
                q[axis] = clamp(p[axis] as isize + d, n);
                best = best.max(src[q]);
            }
            *out = best;
        }
    }
    let mut candidates: Vec<([usize; 3], f64)> = Vec::new();
    for z in r..nz - r {
        for y in r..ny - r {
            for x in r..nx - r {
                let v = values[[z, y, x]];
                if v > 0.0 && v == m[[z, y, x]] {
                    candidates.push(([z, y, x], v));
                }
            }
        }
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut taken: Vec<[usize; 3]> = Vec::new();
    let mut blocked = Array3::<bool>::from_elem((nz, ny, nx), false);
    for (p, _) in candidates {
        if blocked[p] {
            continue;
        }
        taken.push(p);
        for z in p[0].saturating_sub(r)..=(p[0] + r).min(nz - 1) {
            for y in p[1].saturating_sub(r)..=(p[1] + r).min(ny - 1) {
                for x in p[2].saturating_sub(r)..=(p[2] + r).min(nx - 1) {
                    blocked[[z, y, x]] = true;
                }
            }
        }
    }
    taken.sort();
    taken
}

/// The seeds of `image` (normalised), ascending z, y, x.
pub fn policy_peaks(image: ArrayView3<'_, f32>) -> Vec<[usize; 3]> {
    let dt = edge_distance(image);
    let noise = numpy_rand(dt.len(), 42);
    let values = Array3::from_shape_vec(
        dt.dim(),
        dt.iter()
            .zip(noise)
            .map(|(&d, n)| f64::from(d) + n * 1e-4)
            .collect(),
    )
    .expect("same length");
    local_peaks(values.view(), MIN_DISTANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sobel_matches_scipy_on_a_ramp() {
        // scipy.ndimage.sobel of a ramp x along x: the difference x+1 − (x−1) = 2 times the
        // [1, 2, 1]² smoothing's sum 16 inside, 1 × 16 at the reflected ends.
        let a = Array3::from_shape_fn((3, 3, 5), |(_, _, x)| x as f32);
        let s = sobel(a.view(), 2);
        assert_eq!(s[[1, 1, 2]], 32.0);
        assert_eq!(s[[1, 1, 0]], 16.0);
        assert_eq!(s[[1, 1, 4]], 16.0);
        assert_eq!(sobel(a.view(), 0)[[1, 1, 2]], 0.0);
    }

    #[test]
    fn numpy_rand_is_numpys() {
        // np.random.RandomState(42).rand(3)
        let r = numpy_rand(3, 42);
        let want = [0.3745401188473625, 0.9507143064099162, 0.7319939418114051];
        for (a, b) in r.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        }
    }

    #[test]
    fn peaks_keep_their_distance_and_skip_the_border() {
        let mut v = Array3::<f64>::zeros((14, 14, 14));
        v[[5, 5, 5]] = 3.0;
        v[[5, 5, 7]] = 2.0; // within 3 of the stronger peak: dropped
        v[[9, 5, 5]] = 1.0; // 4 away along z: kept
        v[[1, 5, 5]] = 5.0; // within 3 of the border: dropped
        assert_eq!(local_peaks(v.view(), 3), vec![[5, 5, 5], [9, 5, 5]]);
    }
}
