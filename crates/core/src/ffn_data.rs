//! Training data for flood-filling networks (FFN): the partition volume and the balanced
//! training coordinates of google/ffn (Januszewski et al. 2018; `compute_partitions.py`,
//! `build_coordinates.py`).
//!
//! - [`compute_partitions`]: IDs with fewer than `min_size` voxels in the whole volume count as
//!   background; for every other voxel the fraction of voxels of its own ID in the
//!   `(2r+1)³` box around it (`r` = [`PartitionParams::lom_radius`]) is quantised by the
//!   thresholds: value `1 + i` for the first threshold `i` the fraction is below,
//!   `thresholds.len() + 1` at or above the last; 0 is background; voxels within `r` of the
//!   volume's border are [`EXCLUDED`] (255), as google/ffn writes its output into a volume
//!   filled with 255. Box sums come from a summed-volume table over each ID's bounding box
//!   (google/ffn builds one over the whole volume per ID; the sums are the same integers and
//!   the fraction the same `f64` division).
//! - [`build_coordinates`]: the partitions without a `margin` (z, y, x) on each side; every
//!   value but 255 is a class (background included); each class's voxels, in a random order,
//!   are repeated cyclically up to the largest class's count, and all are shuffled. The order
//!   comes from a seeded generator here (google/ffn's is unseeded numpy), so only the classes
//!   and their counts can be compared with it.
//!
//! Hand-written: no crate computes these. Golden tests (`tests/golden_ffn.rs`) against the
//! numpy transcription of google/ffn's code in `scripts/golden/gen_ffn.py`.
//!
//! ```
//! use emstudio_core::ffn_data::{build_coordinates, compute_partitions, PartitionParams};
//! use emstudio_core::progress::NoProgress;
//! // A 5³ volume: one object filling the lower half.
//! let labels = ndarray::Array3::<u32>::from_shape_fn((5, 5, 5), |(z, _, _)| u32::from(z < 3));
//! let params = PartitionParams { lom_radius: [1, 1, 1], min_size: 1, ..PartitionParams::default() };
//! let parts = compute_partitions(labels.view(), &params, &mut NoProgress).unwrap();
//! assert_eq!(parts[[0, 2, 2]], 255); // within the radius of the border
//! assert_eq!(parts[[1, 2, 2]], 13); // all 27 neighbours are the object: at or above 0.9
//! assert_eq!(parts[[2, 2, 2]], 10); // 18 of 27 (0.67): the first threshold above is 0.7, the 10th
//! assert_eq!(parts[[3, 2, 2]], 0); // background
//! let centres = build_coordinates(parts.view(), [1, 1, 1], 7).unwrap();
//! assert_eq!(centres.len(), 3 * 9); // three classes of 9 voxels each
//! ```

use crate::progress::{check, Cancelled, Progress};
use ndarray::{s, Array3, ArrayView3};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The partition value of voxels too close to the border to have a whole box.
pub const EXCLUDED: u8 = 255;

/// google/ffn's recommended thresholds (also UNI-EM's).
pub const DEFAULT_THRESHOLDS: [f64; 12] = [
    0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
];

/// Why the training data could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FfnDataError {
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Cancelled through the progress callback.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Parameters of [`compute_partitions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionParams {
    /// Ascending fractions in (0, 1] that cut the partitions.
    pub thresholds: Vec<f64>,
    /// Half the box side along z, y, x (google/ffn's `lom_radius` is x, y, z; its recommended
    /// value is the FOV radius plus the deltas, 24 for a 33³ FOV moving by 8).
    pub lom_radius: [usize; 3],
    /// IDs with fewer voxels in the whole volume count as background.
    pub min_size: u64,
}

impl Default for PartitionParams {
    fn default() -> Self {
        Self {
            thresholds: DEFAULT_THRESHOLDS.to_vec(),
            lom_radius: [24, 24, 24],
            min_size: 10_000,
        }
    }
}

impl PartitionParams {
    /// Checks the values a user typed.
    pub fn validate(&self) -> Result<(), FfnDataError> {
        if self.thresholds.is_empty() || self.thresholds.len() > 250 {
            return Err(FfnDataError::Invalid(
                "give between 1 and 250 partition thresholds".into(),
            ));
        }
        if !self.thresholds.iter().all(|t| *t > 0.0 && *t <= 1.0) {
            return Err(FfnDataError::Invalid(
                "partition thresholds are fractions above 0 and at most 1".into(),
            ));
        }
        if self.thresholds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FfnDataError::Invalid(
                "partition thresholds must be in ascending order".into(),
            ));
        }
        Ok(())
    }
}

/// The partition volume of `labels` (see the module doc). Reports progress per ID. Not generic
/// over the label type on purpose: it is compiled (optimised) in this crate, not in each caller.
pub fn compute_partitions(
    labels: ArrayView3<'_, u32>,
    params: &PartitionParams,
    progress: &mut dyn Progress,
) -> Result<Array3<u8>, FfnDataError> {
    params.validate()?;
    let (nz, ny, nx) = labels.dim();
    let [rz, ry, rx] = params.lom_radius;
    if nz <= 2 * rz || ny <= 2 * ry || nx <= 2 * rx {
        return Err(FfnDataError::Invalid(format!(
            "the volume ({nz}×{ny}×{nx}, z×y×x) is too small for a box radius of {rz}, {ry}, {rx}: \
             it must be larger than twice the radius along each axis"
        )));
    }
    // Each ID's size and bounding box, in one pass.
    let mut objects: HashMap<u32, (u64, [usize; 3], [usize; 3])> = HashMap::new();
    for ((z, y, x), &l) in labels.indexed_iter() {
        if l == 0 {
            continue;
        }
        let e = objects.entry(l).or_insert((0, [z, y, x], [z, y, x]));
        e.0 += 1;
        for (a, v) in [z, y, x].into_iter().enumerate() {
            e.1[a] = e.1[a].min(v);
            e.2[a] = e.2[a].max(v);
        }
    }
    let mut out = Array3::<u8>::from_elem((nz, ny, nx), EXCLUDED);
    out.slice_mut(s![rz..nz - rz, ry..ny - ry, rx..nx - rx])
        .fill(0);
    let box_voxels = ((2 * rz + 1) * (2 * ry + 1) * (2 * rx + 1)) as f64;
    let last = params.thresholds.len() as u8 + 1;
    let mut kept: Vec<_> = objects
        .into_iter()
        .filter(|(_, (size, _, _))| *size >= params.min_size)
        .collect();
    kept.sort_unstable_by_key(|(l, _)| *l);
    let mut table: Vec<u32> = Vec::new();
    for (k, (id, (_, lo, hi))) in kept.iter().enumerate() {
        // Summed-volume table of this ID over its bounding box, one zero row/column/plane first.
        let (dz, dy, dx) = (hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1);
        let (sy, sx) = ((dy + 1) * (dx + 1), dx + 1);
        table.clear();
        table.resize((dz + 1) * sy, 0);
        for z in 0..dz {
            for y in 0..dy {
                let mut row = 0u32;
                for x in 0..dx {
                    row += u32::from(labels[[lo[0] + z, lo[1] + y, lo[2] + x]] == *id);
                    let i = (z + 1) * sy + (y + 1) * sx + (x + 1);
                    table[i] = row + table[i - sx] + table[i - sy] - table[i - sy - sx];
                }
            }
        }
        // Box [p - r, p + r] clipped to the bounding box: corners in table coordinates.
        let span = |p: usize, lo: usize, hi: usize, r: usize| {
            let a = p.saturating_sub(r).max(lo) - lo;
            let b = (p + r).min(hi) - lo + 1;
            (a, b)
        };
        for z in lo[0].max(rz)..=hi[0].min(nz - rz - 1) {
            let (z0, z1) = span(z, lo[0], hi[0], rz);
            for y in lo[1].max(ry)..=hi[1].min(ny - ry - 1) {
                let (y0, y1) = span(y, lo[1], hi[1], ry);
                for x in lo[2].max(rx)..=hi[2].min(nx - rx - 1) {
                    if labels[[z, y, x]] != *id {
                        continue;
                    }
                    let (x0, x1) = span(x, lo[2], hi[2], rx);
                    let at = |z: usize, y: usize, x: usize| i64::from(table[z * sy + y * sx + x]);
                    let sum = at(z1, y1, x1) - at(z1, y1, x0) - at(z1, y0, x1) - at(z0, y1, x1)
                        + at(z0, y0, x1)
                        + at(z0, y1, x0)
                        + at(z1, y0, x0)
                        - at(z0, y0, x0);
                    let fraction = sum as f64 / box_voxels;
                    out[[z, y, x]] = params
                        .thresholds
                        .iter()
                        .position(|t| fraction < *t)
                        .map_or(last, |i| i as u8 + 1);
                }
            }
        }
        check(progress, k as u64 + 1, kept.len() as u64)?;
    }
    Ok(out)
}

/// Voxels per partition value inside `margin` (z, y, x) of the border, without [`EXCLUDED`]:
/// the classes [`build_coordinates`] balances, ascending by value.
pub fn class_counts(
    partitions: ArrayView3<'_, u8>,
    margin: [usize; 3],
) -> Result<Vec<(u8, u64)>, FfnDataError> {
    let mut counts = BTreeMap::new();
    for &v in inner(partitions, margin)?.iter() {
        if v != EXCLUDED {
            *counts.entry(v).or_insert(0u64) += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

/// Training centres (z, y, x) balanced across the partition classes (see the module doc),
/// shuffled with `seed`. Every class appears as often as the largest one.
pub fn build_coordinates(
    partitions: ArrayView3<'_, u8>,
    margin: [usize; 3],
    seed: u64,
) -> Result<Vec<[usize; 3]>, FfnDataError> {
    let cropped = inner(partitions, margin)?;
    let mut classes: BTreeMap<u8, Vec<[usize; 3]>> = BTreeMap::new();
    for ((z, y, x), &v) in cropped.indexed_iter() {
        if v != EXCLUDED {
            classes
                .entry(v)
                .or_default()
                .push([z + margin[0], y + margin[1], x + margin[2]]);
        }
    }
    let largest = classes.values().map(Vec::len).max().unwrap_or(0);
    if largest == 0 {
        return Err(FfnDataError::Invalid(
            "no voxel inside the margin has a partition: nothing to train on (a smaller margin \
             or box radius, or a larger volume, would leave some)"
                .into(),
        ));
    }
    let mut rng = SplitMix64(seed);
    let mut out = Vec::with_capacity(largest * classes.len());
    for mut members in classes.into_values() {
        shuffle(&mut members, &mut rng);
        out.extend(members.iter().cycle().take(largest));
    }
    shuffle(&mut out, &mut rng);
    Ok(out)
}

/// `partitions` without `margin` on each side; an error when nothing is left.
fn inner(
    partitions: ArrayView3<'_, u8>,
    margin: [usize; 3],
) -> Result<ArrayView3<'_, u8>, FfnDataError> {
    let (nz, ny, nx) = partitions.dim();
    let [mz, my, mx] = margin;
    if nz <= 2 * mz || ny <= 2 * my || nx <= 2 * mx {
        return Err(FfnDataError::Invalid(format!(
            "a margin of {mz}, {my}, {mx} (z, y, x) leaves nothing of a {nz}×{ny}×{nx} volume"
        )));
    }
    Ok(partitions.slice_move(s![mz..nz - mz, my..ny - my, mx..nx - mx]))
}

/// Fisher–Yates with a small seeded generator (reproducible coordinate files).
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// SplitMix64 (Steele et al. 2014): enough for shuffling, and the same on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn bad_parameters_are_named() {
        let labels = Array3::<u32>::ones((4, 4, 4));
        let mut p = PartitionParams {
            lom_radius: [2, 1, 1],
            ..PartitionParams::default()
        };
        let e = compute_partitions(labels.view(), &p, &mut NoProgress).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        p.lom_radius = [1, 1, 1];
        p.thresholds = vec![0.5, 0.2];
        assert!(compute_partitions(labels.view(), &p, &mut NoProgress).is_err());
        p.thresholds = vec![f64::NAN];
        assert!(compute_partitions(labels.view(), &p, &mut NoProgress).is_err());
        p.thresholds = vec![];
        assert!(compute_partitions(labels.view(), &p, &mut NoProgress).is_err());
        let parts = Array3::<u8>::zeros((4, 4, 4));
        assert!(build_coordinates(parts.view(), [2, 0, 0], 1).is_err());
        let all_excluded = Array3::<u8>::from_elem((4, 4, 4), EXCLUDED);
        assert!(build_coordinates(all_excluded.view(), [0, 0, 0], 1).is_err());
    }

    #[test]
    fn coordinates_are_balanced_and_reproducible() {
        let mut parts = Array3::<u8>::zeros((3, 5, 5));
        parts[[1, 1, 1]] = 4;
        parts[[1, 2, 2]] = 4;
        parts[[2, 4, 4]] = EXCLUDED;
        let a = build_coordinates(parts.view(), [0, 0, 0], 5).expect("coords");
        // 72 background voxels; class 4 (2 voxels) repeated to 72.
        assert_eq!(a.len(), 144);
        let fours = a.iter().filter(|c| parts[**c] == 4).count();
        assert_eq!(fours, 72);
        assert!(a.iter().all(|c| parts[*c] != EXCLUDED));
        assert_eq!(
            a,
            build_coordinates(parts.view(), [0, 0, 0], 5).expect("again")
        );
        assert_ne!(
            a,
            build_coordinates(parts.view(), [0, 0, 0], 6).expect("other seed")
        );
        assert_eq!(
            class_counts(parts.view(), [0, 0, 0]).expect("counts"),
            vec![(0, 72), (4, 2)]
        );
    }
}
