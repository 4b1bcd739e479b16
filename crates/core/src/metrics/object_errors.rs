//! Per-object error lists: GT objects split into several predicted objects, and predicted
//! objects that merge several GT objects, most severe first, each with a voxel the UI can jump to.
//!
//! An overlap between GT object `i` and predicted object `j ≠ 0` is **significant** when it has
//! at least `min_overlap_voxels` voxels and at least `min_overlap_fraction` of the GT object.
//! A GT object (label ≠ 0) is *split* when it has significant overlaps with two or more predicted
//! objects; a predicted object is a *merge* when it has significant overlaps with two or more GT
//! objects. Severity is the number of unordered voxel pairs the error gets wrong, the per-object
//! share of the Rand error (as Fiji's `getForegroundRestricted…Disagreements`):
//! split `(t_i² − Σ_j n_ij²) / 2` with unlabelled voxels as singletons, merge
//! `(s_j² − Σ_i n_ij²) / 2` over the GT foreground. Positions are the first voxel in z, y, x
//! raster order (of the object, and of each piece); [`center_positions`] moves each error's
//! `position` to a voxel in the middle of the object, which is where a viewer should jump.
//! Hand-written; tested on constructed cases and the flyem crop in `tests/golden_metrics.rs`.

use super::{ContingencyTable, LabelValue, MetricsError};
use ndarray::{ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Thresholds for the split/merge lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorListOptions {
    /// Minimum voxels in an overlap for it to count.
    pub min_overlap_voxels: u64,
    /// Minimum fraction (0–1) of the GT object inside an overlap for it to count.
    pub min_overlap_fraction: f64,
    /// Keep at most this many entries per list (the most severe); `None` keeps all.
    pub max_entries: Option<usize>,
}

impl Default for ErrorListOptions {
    fn default() -> Self {
        Self {
            min_overlap_voxels: 10,
            min_overlap_fraction: 0.01,
            max_entries: Some(1000),
        }
    }
}

impl ErrorListOptions {
    pub(crate) fn validate(&self) -> Result<(), MetricsError> {
        if (0.0..=1.0).contains(&self.min_overlap_fraction) {
            Ok(())
        } else {
            Err(MetricsError::InvalidParameter(format!(
                "min_overlap_fraction must lie in [0, 1], got {}",
                self.min_overlap_fraction
            )))
        }
    }
}

/// One overlap of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// The other object's label (predicted label for splits, GT label for merges).
    pub label: u32,
    /// Voxels in the overlap.
    pub voxels: u64,
    /// First voxel of the overlap (z, y, x).
    pub first_voxel: [usize; 3],
}

/// A GT object covered by several predicted objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitError {
    /// GT label.
    pub gt_label: u32,
    /// GT object size.
    pub gt_voxels: u64,
    /// Significant predicted pieces, largest first.
    pub pieces: Vec<Piece>,
    /// Voxels of the object with predicted label 0.
    pub unlabelled_voxels: u64,
    /// Voxel pairs of the object that the prediction separates (severity).
    pub split_pairs: u64,
    /// Where to look (z, y, x): the GT object's first voxel, or a central one after
    /// [`center_positions`].
    pub position: [usize; 3],
}

/// A predicted object covering several GT objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeError {
    /// Predicted label.
    pub pred_label: u32,
    /// Predicted object size (whole volume).
    pub pred_voxels: u64,
    /// Significant GT objects inside it, largest overlap first.
    pub gt_objects: Vec<Piece>,
    /// Voxels of the predicted object on GT background (label 0).
    pub background_voxels: u64,
    /// Voxel pairs of different GT objects that the prediction joins (severity).
    pub merge_pairs: u64,
    /// Where to look (z, y, x): the predicted object's first voxel, or a central one after
    /// [`center_positions`].
    pub position: [usize; 3],
}

/// Split and merge lists, each sorted by severity (descending), then label.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObjectErrors {
    /// Split GT objects.
    pub splits: Vec<SplitError>,
    /// Merging predicted objects.
    pub merges: Vec<MergeError>,
}

fn saturate(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// Builds the split and merge lists of a table.
pub fn object_errors(table: &ContingencyTable, options: &ErrorListOptions) -> ObjectErrors {
    let gt_size = |label: u32| -> u64 {
        let g = table.gt_labels();
        let k = g.partition_point(|l| l.label < label);
        g.get(k).filter(|l| l.label == label).map_or(0, |l| l.count)
    };
    let significant = |count: u64, gt_voxels: u64| -> bool {
        count >= options.min_overlap_voxels
            && count as f64 >= options.min_overlap_fraction * gt_voxels as f64
    };

    let mut splits = Vec::new();
    for g in table.gt_labels().iter().filter(|l| l.label != 0) {
        let row = table.row(g.label);
        let mut pieces = Vec::new();
        let mut unlabelled = 0;
        let mut sum_sq: u128 = 0;
        for c in row {
            if c.pred == 0 {
                unlabelled += c.count;
                sum_sq += u128::from(c.count); // singletons
                continue;
            }
            sum_sq += u128::from(c.count) * u128::from(c.count);
            if significant(c.count, g.count) {
                pieces.push(Piece {
                    label: c.pred,
                    voxels: c.count,
                    first_voxel: c.first_voxel,
                });
            }
        }
        if pieces.len() >= 2 {
            pieces.sort_by(|a, b| b.voxels.cmp(&a.voxels).then(a.label.cmp(&b.label)));
            let t = u128::from(g.count);
            splits.push(SplitError {
                gt_label: g.label,
                gt_voxels: g.count,
                pieces,
                unlabelled_voxels: unlabelled,
                split_pairs: saturate((t * t - sum_sq) / 2),
                position: g.first_voxel,
            });
        }
    }

    // Group cells by predicted label.
    let mut by_pred: Vec<&super::Cell> = table.cells().iter().filter(|c| c.pred != 0).collect();
    by_pred.sort_by_key(|c| (c.pred, c.gt));
    let mut merges = Vec::new();
    let preds = table.pred_labels();
    let mut start = 0;
    while start < by_pred.len() {
        let label = by_pred[start].pred;
        let end = start + by_pred[start..].partition_point(|c| c.pred == label);
        let mut objects = Vec::new();
        let mut background = 0;
        let mut fg: u128 = 0;
        let mut sum_sq: u128 = 0;
        for c in &by_pred[start..end] {
            if c.gt == 0 {
                background += c.count;
                continue;
            }
            fg += u128::from(c.count);
            sum_sq += u128::from(c.count) * u128::from(c.count);
            if significant(c.count, gt_size(c.gt)) {
                objects.push(Piece {
                    label: c.gt,
                    voxels: c.count,
                    first_voxel: c.first_voxel,
                });
            }
        }
        if objects.len() >= 2 {
            objects.sort_by(|a, b| b.voxels.cmp(&a.voxels).then(a.label.cmp(&b.label)));
            let k = preds.partition_point(|l| l.label < label);
            let (pred_voxels, position) = preds
                .get(k)
                .filter(|l| l.label == label)
                .map_or((0, [0; 3]), |l| (l.count, l.first_voxel));
            merges.push(MergeError {
                pred_label: label,
                pred_voxels,
                gt_objects: objects,
                background_voxels: background,
                merge_pairs: saturate((fg * fg - sum_sq) / 2),
                position,
            });
        }
        start = end;
    }

    splits.sort_by(|a, b| {
        b.split_pairs
            .cmp(&a.split_pairs)
            .then(a.gt_label.cmp(&b.gt_label))
    });
    merges.sort_by(|a, b| {
        b.merge_pairs
            .cmp(&a.merge_pairs)
            .then(a.pred_label.cmp(&b.pred_label))
    });
    if let Some(max) = options.max_entries {
        splits.truncate(max);
        merges.truncate(max);
    }
    ObjectErrors { splits, merges }
}

/// Per-object accumulation for [`center_positions`]: voxels, Σy and Σx per z slice.
#[derive(Default)]
struct SliceSums {
    per_z: HashMap<usize, (u64, u64, u64)>,
}

/// Moves each error's `position` to a voxel of its object near the middle: the object's
/// voxel closest to the centroid of its largest z slice (splits: the GT object; merges: the
/// predicted object). Two passes over the volume, only for the listed objects.
pub fn center_positions<G: LabelValue, P: LabelValue>(
    gt: ArrayView3<'_, G>,
    pred: ArrayView3<'_, P>,
    errors: &mut ObjectErrors,
) {
    if gt.dim() != pred.dim() {
        return;
    }
    let mut split_sums: HashMap<u32, SliceSums> = errors
        .splits
        .iter()
        .map(|s| (s.gt_label, SliceSums::default()))
        .collect();
    let mut merge_sums: HashMap<u32, SliceSums> = errors
        .merges
        .iter()
        .map(|m| (m.pred_label, SliceSums::default()))
        .collect();
    if split_sums.is_empty() && merge_sums.is_empty() {
        return;
    }
    let add = |sums: &mut HashMap<u32, SliceSums>, label: u32, z: usize, y: usize, x: usize| {
        if let Some(s) = sums.get_mut(&label) {
            let e = s.per_z.entry(z).or_default();
            e.0 += 1;
            e.1 += y as u64;
            e.2 += x as u64;
        }
    };
    for (z, (gs, ps)) in gt
        .axis_iter(Axis(0))
        .zip(pred.axis_iter(Axis(0)))
        .enumerate()
    {
        for ((y, x), &g) in gs.indexed_iter() {
            let g = g.to_u32();
            if g != 0 {
                add(&mut split_sums, g, z, y, x);
            }
            let p = ps[[y, x]].to_u32();
            if p != 0 {
                add(&mut merge_sums, p, z, y, x);
            }
        }
    }
    // The target of each object: (z, centroid y, centroid x) of its largest slice.
    let target = |s: &SliceSums| -> Option<(usize, f64, f64)> {
        let (&z, &(n, sy, sx)) = s
            .per_z
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.0.cmp(a.0)))?;
        Some((z, sy as f64 / n as f64, sx as f64 / n as f64))
    };
    let nearest = |z: usize, cy: f64, cx: f64, is_object: &dyn Fn(usize, usize) -> bool| {
        let plane = gt.index_axis(Axis(0), z);
        let mut best: Option<(f64, [usize; 3])> = None;
        for ((y, x), _) in plane.indexed_iter() {
            if is_object(y, x) {
                let d = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, [z, y, x]));
                }
            }
        }
        best.map(|b| b.1)
    };
    for s in &mut errors.splits {
        if let Some((z, cy, cx)) = split_sums.get(&s.gt_label).and_then(target) {
            let label = s.gt_label;
            let plane = gt.index_axis(Axis(0), z);
            if let Some(p) = nearest(z, cy, cx, &|y, x| plane[[y, x]].to_u32() == label) {
                s.position = p;
            }
        }
    }
    for m in &mut errors.merges {
        if let Some((z, cy, cx)) = merge_sums.get(&m.pred_label).and_then(target) {
            let label = m.pred_label;
            let plane = pred.index_axis(Axis(0), z);
            if let Some(p) = nearest(z, cy, cx, &|y, x| plane[[y, x]].to_u32() == label) {
                m.position = p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn positions_move_to_the_middle_of_the_largest_slice() {
        // GT 1: a ring-free blob, largest in slice 1, centred at (2, 2); pred splits it in two
        // and merges GT 2 into one of the halves.
        let mut gt = ndarray::Array3::<u16>::zeros((2, 5, 7));
        let mut pred = ndarray::Array3::<u32>::zeros((2, 5, 7));
        for y in 0..5 {
            for x in 0..5 {
                gt[[1, y, x]] = 1;
                pred[[1, y, x]] = if x < 2 { 10 } else { 11 };
            }
            gt[[1, y, 6]] = 2;
            pred[[1, y, 6]] = 11;
        }
        gt[[0, 0, 0]] = 1;
        pred[[0, 0, 0]] = 10;
        let table = ContingencyTable::from_labels_3d(
            gt.view(),
            pred.view(),
            &mut crate::progress::NoProgress,
        )
        .expect("same shape");
        let options = ErrorListOptions {
            min_overlap_voxels: 1,
            ..ErrorListOptions::default()
        };
        let mut e = object_errors(&table, &options);
        assert_eq!(e.splits[0].position, [0, 0, 0], "raster-first voxel before");
        center_positions(gt.view(), pred.view(), &mut e);
        assert_eq!(e.splits[0].position, [1, 2, 2]);
        // Pred 11 covers x 2..5 and x 6 of slice 1: centroid x = (2+3+4+6)/4 = 3.75 → (2, 4).
        assert_eq!(e.merges[0].pred_label, 11);
        assert_eq!(e.merges[0].position, [1, 2, 4]);
    }

    #[test]
    fn finds_split_and_merge() {
        // GT 1 split into pred 10/11; GT 2 and 3 merged into pred 20.
        let gt = array![[1u16, 1, 1, 1, 0, 2, 2, 3, 3, 3]];
        let pred = array![[10u32, 10, 11, 11, 20, 20, 20, 20, 20, 20]];
        let t = ContingencyTable::from_labels_2d(gt.view(), pred.view()).expect("ok");
        let opts = ErrorListOptions {
            min_overlap_voxels: 1,
            min_overlap_fraction: 0.0,
            max_entries: None,
        };
        let e = object_errors(&t, &opts);
        assert_eq!(e.splits.len(), 1);
        let s = &e.splits[0];
        assert_eq!((s.gt_label, s.gt_voxels, s.split_pairs), (1, 4, 4));
        assert_eq!(s.pieces[0].label, 10);
        assert_eq!(s.pieces[1].first_voxel, [0, 0, 2]);
        assert_eq!(e.merges.len(), 1);
        let m = &e.merges[0];
        assert_eq!(
            (m.pred_label, m.pred_voxels, m.background_voxels),
            (20, 6, 1)
        );
        assert_eq!(m.merge_pairs, 6); // 2 × 3 pairs across GT 2 and 3
        assert_eq!(m.gt_objects[0].label, 3);
        assert_eq!(m.position, [0, 0, 4]);
        // A large minimum hides both.
        let strict = ErrorListOptions {
            min_overlap_voxels: 3,
            ..opts
        };
        let e = object_errors(&t, &strict);
        assert!(e.splits.is_empty() && e.merges.is_empty());
    }
}
