//! Semantic (binary mask) scores: Jaccard (IoU), Dice, conformity, precision and recall.
//!
//! Foreground is "label ≠ 0" in both arrays, so label volumes and 0/1 or 0/255 masks work
//! alike. Definitions (DESIGN.md section 5), with TP/FP/FN/TN voxel counts:
//! Jaccard `TP/(TP+FP+FN)`, Dice `2TP/(2TP+FP+FN)`, conformity `1 − (FP+FN)/TP`,
//! precision `TP/(TP+FP)`, recall `TP/(TP+FN)`.
//!
//! Zero denominators: a ratio is **1** when both masks are empty (perfect agreement on
//! nothing) and **0** otherwise (e.g. precision of an empty prediction against a non-empty GT,
//! sklearn's `zero_division=0`). Conformity is `None` when `TP = 0` but `FP + FN > 0` (the
//! formula tends to −∞; it is unbounded below whenever TP is small), and `Some(1)` when both
//! masks are empty. Checked against numpy formulas in `scripts/golden/gen_metrics.py`
//! (`tests/golden_metrics.rs`).

use super::{check_same_shape, ContingencyTable, LabelValue, MetricsError};
use ndarray::{ArrayView2, ArrayView3, Axis, Zip};
use serde::{Deserialize, Serialize};

/// Confusion counts and the scores derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SemanticScores {
    /// Foreground in both.
    pub true_positives: u64,
    /// Foreground in the prediction only.
    pub false_positives: u64,
    /// Foreground in the GT only.
    pub false_negatives: u64,
    /// Background in both.
    pub true_negatives: u64,
    /// Intersection over union.
    pub jaccard: f64,
    /// `2|A∩B| / (|A|+|B|)`.
    pub dice: f64,
    /// `1 − (FP+FN)/TP`; `None` when TP = 0 and FP + FN > 0.
    pub conformity: Option<f64>,
    /// `TP/(TP+FP)`.
    pub precision: f64,
    /// `TP/(TP+FN)`.
    pub recall: f64,
}

impl SemanticScores {
    /// Scores from confusion counts.
    pub fn from_counts(tp: u64, fp: u64, fn_: u64, tn: u64) -> Self {
        let empty = tp == 0 && fp == 0 && fn_ == 0;
        let r = |num: u64, den: u64| -> f64 {
            if den > 0 {
                num as f64 / den as f64
            } else if empty {
                1.0
            } else {
                0.0
            }
        };
        let errors = fp + fn_;
        let conformity = if tp > 0 {
            Some(1.0 - errors as f64 / tp as f64)
        } else if errors == 0 {
            Some(1.0)
        } else {
            None
        };
        Self {
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            true_negatives: tn,
            jaccard: r(tp, tp + fp + fn_),
            dice: r(2 * tp, 2 * tp + fp + fn_),
            conformity,
            precision: r(tp, tp + fp),
            recall: r(tp, tp + fn_),
        }
    }
}

/// Mask scores of two 3D arrays (foreground = value ≠ 0).
pub fn semantic_scores_3d<G: LabelValue, P: LabelValue>(
    gt: ArrayView3<'_, G>,
    pred: ArrayView3<'_, P>,
) -> Result<SemanticScores, MetricsError> {
    check_same_shape(gt.shape(), pred.shape())?;
    // Foreground counts of the GT, the prediction and both (branch-free, contiguous fast path).
    let (mut a, mut b, mut both) = (0u64, 0u64, 0u64);
    let mut count = |g: G, p: P| {
        let (x, y) = (u64::from(g.to_u32() != 0), u64::from(p.to_u32() != 0));
        a += x;
        b += y;
        both += x & y;
    };
    match (gt.as_slice(), pred.as_slice()) {
        (Some(gs), Some(ps)) => {
            // u32 partial sums over short chunks vectorise well.
            for (gc, pc) in gs.chunks(1 << 16).zip(ps.chunks(1 << 16)) {
                let (mut ca, mut cb, mut cab) = (0u32, 0u32, 0u32);
                for (&g, &p) in gc.iter().zip(pc) {
                    let (x, y) = (u32::from(g.to_u32() != 0), u32::from(p.to_u32() != 0));
                    ca += x;
                    cb += y;
                    cab += x & y;
                }
                a += u64::from(ca);
                b += u64::from(cb);
                both += u64::from(cab);
            }
        }
        _ => Zip::from(&gt).and(&pred).for_each(|&g, &p| count(g, p)),
    }
    let n = gt.len() as u64;
    Ok(SemanticScores::from_counts(
        both,
        b - both,
        a - both,
        n + both - a - b,
    ))
}

/// Mask scores of two 2D images.
pub fn semantic_scores_2d<G: LabelValue, P: LabelValue>(
    gt: ArrayView2<'_, G>,
    pred: ArrayView2<'_, P>,
) -> Result<SemanticScores, MetricsError> {
    semantic_scores_3d(gt.insert_axis(Axis(0)), pred.insert_axis(Axis(0)))
}

/// Mask scores of a probability map binarised at each of `thresholds` (foreground =
/// `value > threshold`, as `emstudio label --threshold` and the Postprocess panel binarise)
/// against the GT's foreground, in the order given. Used to choose a threshold on validation
/// slices before it is applied to others.
pub fn semantic_threshold_sweep<G: LabelValue>(
    gt: ArrayView3<'_, G>,
    map: ArrayView3<'_, f32>,
    thresholds: &[f64],
) -> Result<Vec<(f64, SemanticScores)>, MetricsError> {
    check_same_shape(gt.shape(), map.shape())?;
    // Per threshold: voxels above it, and those of them in the GT foreground.
    let mut above = vec![0u64; thresholds.len()];
    let mut above_in_gt = vec![0u64; thresholds.len()];
    let mut gt_voxels = 0u64;
    Zip::from(&gt).and(&map).for_each(|&g, &v| {
        let fg = u64::from(g.to_u32() != 0);
        gt_voxels += fg;
        for (k, &t) in thresholds.iter().enumerate() {
            let on = u64::from(f64::from(v) > t);
            above[k] += on;
            above_in_gt[k] += on & fg;
        }
    });
    let n = gt.len() as u64;
    Ok(thresholds
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let tp = above_in_gt[k];
            let fp = above[k] - tp;
            let fn_ = gt_voxels - tp;
            (
                t,
                SemanticScores::from_counts(tp, fp, fn_, n - tp - fp - fn_),
            )
        })
        .collect())
}

/// Mask scores from a contingency table (no second pass over the voxels).
pub fn semantic_from_table(table: &ContingencyTable) -> SemanticScores {
    let mut counts = [0u64; 4];
    for c in table.cells() {
        let k = (usize::from(c.gt != 0) << 1) | usize::from(c.pred != 0);
        counts[k] += c.count;
    }
    SemanticScores::from_counts(counts[3], counts[1], counts[2], counts[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_threshold_sweep_scores_each_binarised_map_like_a_mask() {
        let gt = array![[[0u32, 1, 1, 0], [1, 1, 0, 0]]];
        let map = array![[[0.1f32, 0.9, 0.4, 0.6], [0.5, 0.7, 0.2, 0.0]]];
        let thresholds = [0.0, 0.3, 0.5, 0.65, 1.0];
        let sweep =
            semantic_threshold_sweep(gt.view(), map.view(), &thresholds).expect("same shape");
        assert_eq!(sweep.len(), thresholds.len());
        for (t, scores) in sweep {
            let mask = map.mapv(|v| u32::from(f64::from(v) > t));
            let direct = semantic_scores_3d(gt.view(), mask.view()).expect("same shape");
            assert_eq!(scores, direct, "threshold {t}");
        }
        // 0.5 is not above 0.5: at 0.5 the mask is {0.9, 0.6, 0.7} → TP 2, FP 1, FN 2.
        let at_half = semantic_threshold_sweep(gt.view(), map.view(), &[0.5]).expect("shape")[0].1;
        assert_eq!(
            (
                at_half.true_positives,
                at_half.false_positives,
                at_half.false_negatives
            ),
            (2, 1, 2)
        );
        let wrong = ndarray::Array3::<f32>::zeros((1, 2, 3));
        assert!(semantic_threshold_sweep(gt.view(), wrong.view(), &[0.5]).is_err());
    }

    #[test]
    fn counts_and_scores() {
        let gt = array![[1u8, 1, 0, 0], [1, 1, 0, 0]];
        let pred = array![[0u8, 255, 255, 0], [0, 255, 0, 0]];
        let s = semantic_scores_2d(gt.view(), pred.view()).expect("same shape");
        assert_eq!(
            (
                s.true_positives,
                s.false_positives,
                s.false_negatives,
                s.true_negatives
            ),
            (2, 1, 2, 3)
        );
        assert!((s.jaccard - 0.4).abs() < 1e-15);
        assert!((s.dice - 4.0 / 7.0).abs() < 1e-15);
        assert_eq!(s.conformity, Some(-0.5));
        let t = ContingencyTable::from_labels_2d(gt.view(), pred.view()).expect("ok");
        assert_eq!(semantic_from_table(&t), s);
    }

    #[test]
    fn zero_denominators() {
        let z = array![[0u8, 0]];
        let s = semantic_scores_2d(z.view(), z.view()).expect("ok");
        assert_eq!(
            (s.jaccard, s.dice, s.precision, s.recall),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(s.conformity, Some(1.0));
        let o = array![[1u8, 0]];
        let s = semantic_scores_2d(o.view(), z.view()).expect("ok");
        assert_eq!(
            (s.jaccard, s.dice, s.precision, s.recall),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(s.conformity, None);
    }
}
