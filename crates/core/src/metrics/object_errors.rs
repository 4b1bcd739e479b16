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
//! raster order (of the object, and of each piece). Hand-written; tested on constructed cases
//! and the flyem crop in `tests/golden_metrics.rs`.

use super::{ContingencyTable, MetricsError};
use serde::{Deserialize, Serialize};

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
    /// First voxel of the GT object (z, y, x).
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
    /// First voxel of the predicted object (z, y, x).
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
